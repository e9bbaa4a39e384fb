"""Moving many objects between stores: bounded parallelism, retries, counters.

Small files must not be bound by per-request latency, so transfers run on a
thread pool (the work is network waits, which release the GIL; s3fs runs the
requests on its own event loop). A failed transfer is retried with
exponential backoff; what still fails is reported, never silently dropped.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TypeVar

from ..errors import IntegrityError, ObjectNotAvailable
from ..progress import transfer_progress

T = TypeVar("T")
RETRIES = 4


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

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, object]:
        return {"action": self.action, "transferred": self.transferred, "bytes": self.bytes, "skipped": self.skipped,
                "records": self.records, "failed": self.failed, "renumbered": self.renumbered,
                "seconds": round(self.seconds, 3), "ok": self.ok}


def run_parallel(items: Sequence[T], work: Callable[[T], int], sizes: Callable[[T], int], label: Callable[[T], str],
                 jobs: int | None, description: str, report: TransferReport,
                 async_work: Callable[[T], Awaitable[int]] | None = None, loop: asyncio.AbstractEventLoop | None = None,
                 count: Callable[[T], int] = lambda item: 1) -> None:
    """Call ``work(item)`` (returns bytes moved) for every item, in parallel, with retries.

    With ``async_work`` and the filesystem's ``loop`` (s3fs, gcsfs, adlfs), the
    requests run as coroutines on that loop instead of one thread each.
    """
    if not items:
        return
    jobs = max(1, jobs or default_jobs())
    start = time.perf_counter()

    def attempt(item: T) -> int:
        for n in range(RETRIES):
            try:
                return work(item)
            except (IntegrityError, ObjectNotAvailable):
                raise  # retrying cannot fix bad or absent bytes
            except Exception:
                if n + 1 == RETRIES:
                    raise
                time.sleep(min(5.0, 0.2 * 2**n) * (0.5 + random.random()))
        raise AssertionError("unreachable")

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

    with transfer_progress(sum(count(i) for i in items), sum(sizes(i) for i in items), description) as advance:
        if async_work is not None and loop is not None:
            import fsspec.asyn

            fsspec.asyn.sync(loop, _gather, items, async_work, jobs, settle, advance)
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
                  advance: Callable[[int, int], None]) -> None:
    """All items on the filesystem's own event loop, ``jobs`` at a time: no thread per request."""
    gate = asyncio.Semaphore(jobs)

    async def one(item: T) -> None:
        async with gate:
            for n in range(RETRIES):
                try:
                    moved = await work(item)
                except (IntegrityError, ObjectNotAvailable) as exc:
                    settle(item, None, exc, advance)
                    return
                except Exception as exc:
                    if n + 1 == RETRIES:
                        settle(item, None, exc, advance)
                        return
                    await asyncio.sleep(min(5.0, 0.2 * 2**n) * (0.5 + random.random()))
                else:
                    settle(item, moved, None, advance)
                    return

    await asyncio.gather(*(one(item) for item in items))
