"""Moving objects between stores: one code path for blocking and event-loop I/O, retries, counters.

Small files must not be bound by per-request latency, so transfers run in
parallel: on a thread pool (the work is network waits, which release the
GIL), or as coroutines on the filesystem's own event loop (s3fs, gcsfs,
adlfs). A failed transfer is retried with exponential backoff; what still
fails is reported, never silently dropped.

Each transfer is written once, as a coroutine that does its I/O through an
:class:`IOMode`. :data:`BLOCKING` makes every call in the calling thread and
finishes it before returning, so such a coroutine never suspends and
:func:`run_blocking` runs it to its end without an event loop (safe inside
Jupyter's running loop, and free of any thread hop). :data:`ON_LOOP` awaits
the filesystem's async methods, for the event-loop path.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import IntegrityError, ObjectNotAvailable
from ..progress import transfer_progress

T = TypeVar("T")
RETRIES = 4
#: A big object is uploaded in parts of this size (S3 multipart), never whole in memory.
PART_SIZE = 8 << 20
#: Parts of one upload in flight at once: the most memory one transfer holds is PART_SIZE x this.
#: (Downloads stream each object in one request, 64 KiB at a time: measured faster on loopback
#: than ranged parts, and it holds less.)
PARTS_IN_FLIGHT = 2
#: Bytes all transfers of one push or pull may hold at once, each counted as at most one
#: transfer's window: four big transfers at a time, as rclone's default. With the S3 client's
#: own copies and the interpreter, peak RSS stays under 200 MB for objects of any size.
MEMORY_BUDGET = 4 * PART_SIZE * PARTS_IN_FLIGHT
#: What a download weighs against the budget: it streams (64 KiB reads into the file; a pack's
#: members are split one at a time, each at most 1 MiB), so its size does not matter.
DOWNLOAD_WEIGHT = 1 << 20


class IOMode:
    """Blocking filesystem I/O behind ``async`` methods; see :data:`BLOCKING`.

    Every method runs to completion in the calling thread before it returns,
    so a coroutine that awaits nothing but these never suspends.
    """

    async def get_file(self, fs: Any, rpath: str, lpath: str, **kwargs: Any) -> None:
        """Download ``rpath`` of ``fs`` to the local file ``lpath``."""
        fs.get_file(rpath, lpath, **kwargs)

    async def put_file(self, fs: Any, lpath: str, rpath: str, **kwargs: Any) -> None:
        """Upload the local file ``lpath`` to ``rpath`` of ``fs``."""
        fs.put_file(lpath, rpath, **kwargs)

    async def cat_range(self, fs: Any, path: str, start: int, end: int) -> bytes:
        """The bytes ``[start, end)`` of ``path`` (one ranged read)."""
        return bytes(fs.cat_file(path, start=start, end=end))

    async def call_s3(self, fs: Any, method: str, **kwargs: Any) -> Any:
        """One S3 API call through s3fs (its retries, its errors as ``OSError``)."""
        return fs.call_s3(method, **kwargs)

    async def offload(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking or CPU-bound ``fn(*args)`` where it cannot stall other transfers."""
        return fn(*args)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (between retries)."""
        time.sleep(seconds)


class LoopIO(IOMode):
    """Filesystem I/O on the filesystem's event loop: its async methods, awaited."""

    async def get_file(self, fs: Any, rpath: str, lpath: str, **kwargs: Any) -> None:
        """Download ``rpath`` of ``fs`` to the local file ``lpath``."""
        await fs._get_file(rpath, lpath, **kwargs)

    async def put_file(self, fs: Any, lpath: str, rpath: str, **kwargs: Any) -> None:
        """Upload the local file ``lpath`` to ``rpath`` of ``fs``."""
        await fs._put_file(lpath, rpath, **kwargs)

    async def cat_range(self, fs: Any, path: str, start: int, end: int) -> bytes:
        """The bytes ``[start, end)`` of ``path`` (one ranged read)."""
        return bytes(await fs._cat_file(path, start=start, end=end))

    async def call_s3(self, fs: Any, method: str, **kwargs: Any) -> Any:
        """One S3 API call through s3fs (its retries, its errors as ``OSError``)."""
        return await fs._call_s3(method, **kwargs)

    async def offload(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on a worker thread: hashing a big object must not stall the loop."""
        return await asyncio.to_thread(fn, *args)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` without blocking the loop."""
        await asyncio.sleep(seconds)


#: I/O in the calling thread; coroutines using it run with :func:`run_blocking`.
BLOCKING = IOMode()
#: I/O on the filesystem's event loop (``fs._get_file`` and friends).
ON_LOOP = LoopIO()


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that does its I/O through :data:`BLOCKING` to its end, in this thread.

    Raises:
        RuntimeError: the coroutine suspended (it awaited real async I/O).
    """
    try:
        coro.send(None)
    except StopIteration as done:
        value: T = done.value
        return value
    coro.close()
    raise RuntimeError("a coroutine run with BLOCKING I/O suspended; it must await only BLOCKING calls")


def backoff(attempt: int) -> float:
    """Seconds to wait before retry ``attempt + 1``: exponential, capped, with jitter."""
    return min(5.0, 0.2 * 2.0**attempt) * (0.5 + random.random())


async def with_retries(call: Callable[[], Awaitable[T]], io: IOMode) -> T:
    """``await call()``, retried up to :data:`RETRIES` times; bad or absent bytes are not retried."""
    for n in range(RETRIES):
        try:
            return await call()
        except (IntegrityError, ObjectNotAvailable):
            raise  # retrying cannot fix bad or absent bytes
        except Exception:
            if n + 1 == RETRIES:
                raise
            await io.sleep(backoff(n))
    raise AssertionError("unreachable")


class ByteGate:
    """Admit work while the bytes it holds in memory stay within a budget (threads).

    One item bigger than the whole budget still runs, alone: a push of any size
    progresses, and memory stays bounded by the budget or by that one item's window.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._cond = threading.Condition()

    def acquire(self, nbytes: int) -> None:
        """Wait until ``nbytes`` fit in the budget (or nothing else is in flight), then take them."""
        with self._cond:
            self._cond.wait_for(lambda: self.used == 0 or self.used + nbytes <= self.budget)
            self.used += nbytes

    def release(self, nbytes: int) -> None:
        """Give back what :meth:`acquire` took."""
        with self._cond:
            self.used -= nbytes
            self._cond.notify_all()


class AsyncByteGate:
    """:class:`ByteGate` for coroutines on one event loop."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._cond = asyncio.Condition()

    async def acquire(self, nbytes: int) -> None:
        """Wait until ``nbytes`` fit in the budget (or nothing else is in flight), then take them."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.used == 0 or self.used + nbytes <= self.budget)
            self.used += nbytes

    async def release(self, nbytes: int) -> None:
        """Give back what :meth:`acquire` took."""
        async with self._cond:
            self.used -= nbytes
            self._cond.notify_all()


def memory_weight(nbytes: int) -> int:
    """The most memory a transfer of ``nbytes`` holds: the bytes themselves, or one window of parts."""
    return max(1, min(nbytes, PART_SIZE * PARTS_IN_FLIGHT))


def default_jobs() -> int:
    """Requests in flight: latency-bound work wants far more than one per core."""
    return min(64, (os.cpu_count() or 2) * 8)


@dataclass
class TransferReport:
    """What a push, pull or prune moved. ``transferred`` counts objects actually sent or fetched."""

    action: str
    transferred: int = 0
    bytes: int = 0
    skipped: int = 0
    records: int = 0
    failed: list[str] = field(default_factory=list)
    renumbered: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: records files a pull refused (malformed or crafted), each with the reason
    rejected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed and no records file was refused."""
        return not self.failed and not self.rejected

    def to_dict(self) -> dict[str, object]:
        """The report as plain JSON-ready values."""
        return {"action": self.action, "transferred": self.transferred, "bytes": self.bytes, "skipped": self.skipped,
                "records": self.records, "failed": self.failed, "renumbered": self.renumbered,
                "rejected": self.rejected, "seconds": round(self.seconds, 3), "ok": self.ok}


def run_parallel(items: Sequence[T], work: Callable[[T], int], sizes: Callable[[T], int], label: Callable[[T], str],
                 jobs: int | None, description: str, report: TransferReport,
                 async_work: Callable[[T], Awaitable[int]] | None = None, loop: asyncio.AbstractEventLoop | None = None,
                 count: Callable[[T], int] = lambda item: 1, weigh: Callable[[T], int] | None = None) -> None:
    """Call ``work(item)`` (returns bytes moved) for every item, in parallel, with retries.

    With ``async_work`` and the filesystem's ``loop`` (s3fs, gcsfs, adlfs), the
    requests run as coroutines on that loop instead of one thread each. Besides
    ``jobs``, the bytes in flight are bounded by :data:`MEMORY_BUDGET` (each item
    weighs ``weigh(item)``, by default :func:`memory_weight` of its ``sizes``), so a
    push or pull of big objects keeps a bounded resident set whatever their size.

    Raises:
        IntegrityError: some object's bytes did not match its hash (the first such error;
            every failure is also listed in ``report.failed``).
    """
    if not items:
        return
    jobs = max(1, jobs or default_jobs())
    start = time.perf_counter()
    errors: list[BaseException] = []

    def settle(item: T, moved: int | None, exc: BaseException | None, advance: Callable[[int, int], None]) -> None:
        if exc is not None:  # collect, so one bad object does not hide the rest
            report.failed.append(f"{label(item)}: {exc}")
            errors.append(exc)
            advance(count(item), 0)
            return
        report.transferred += count(item)
        report.bytes += moved or 0
        advance(count(item), moved or 0)

    async def now(item: T) -> int:
        return work(item)

    gate = ByteGate(MEMORY_BUDGET)
    weight_of = weigh or (lambda item: memory_weight(sizes(item)))

    def attempt(item: T) -> int:
        weight = weight_of(item)
        gate.acquire(weight)
        try:
            return run_blocking(with_retries(lambda: now(item), BLOCKING))
        finally:
            gate.release(weight)

    with transfer_progress(sum(count(i) for i in items), sum(sizes(i) for i in items), description) as advance:
        if async_work is not None and loop is not None:
            import fsspec.asyn

            fsspec.asyn.sync(loop, _gather, items, async_work, jobs, settle, advance, weight_of)
        else:
            with ThreadPoolExecutor(min(jobs, len(items)), thread_name_prefix="limnos-transfer") as pool:
                futures = {pool.submit(attempt, item): item for item in items}
                for future in as_completed(futures):
                    item = futures[future]
                    try:
                        settle(item, future.result(), None, advance)
                    except BaseException as exc:
                        settle(item, None, exc, advance)
    report.seconds += time.perf_counter() - start
    integrity = [e for e in errors if isinstance(e, IntegrityError)]
    if integrity:
        raise integrity[0]


async def _gather(items: Sequence[T], work: Callable[[T], Awaitable[int]], jobs: int, settle: Callable[..., None],
                  advance: Callable[[int, int], None], weight_of: Callable[[T], int]) -> None:
    """All items on the filesystem's own event loop, ``jobs`` at a time and within the memory budget."""
    slots = asyncio.Semaphore(jobs)
    gate = AsyncByteGate(MEMORY_BUDGET)

    async def one(item: T) -> None:
        weight = weight_of(item)
        async with slots:
            await gate.acquire(weight)
            try:
                moved = await with_retries(lambda: work(item), ON_LOOP)
            except Exception as exc:
                settle(item, None, exc, advance)
            else:
                settle(item, moved, None, advance)
            finally:
                await gate.release(weight)

    await asyncio.gather(*(one(item) for item in items))
