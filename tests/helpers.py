"""Small test helpers shared across test modules (import as ``from helpers import ...``)."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


def age(path: os.PathLike[str] | str, seconds: float = 3600) -> None:
    """Backdate a file's mtime, so the stat cache trusts it (it skips racy, just-written files)."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


@dataclass(frozen=True)
class Call:
    """One call seen by a :class:`Rendezvous` spy: which thread made it, with which arguments."""

    thread: int
    args: tuple[Any, ...]


class Rendezvous:
    """Spies that prove two calls run at the same time, without measuring any time.

    ``wrap(label, func)`` returns ``func`` with a spy around it. The first call
    of each label waits at a barrier before running ``func``; the barrier opens
    only once every label is *inside* its call, which a serial implementation
    (one call returns before the other starts) can never reach. Then the
    barrier breaks after ``timeout`` seconds and ``overlapped`` is False. The
    timeout only keeps a serial implementation from hanging the test; it bounds
    nothing the code under test does.
    """

    def __init__(self, labels: tuple[str, ...] = ("copy", "hash"), timeout: float = 20.0) -> None:
        self.labels = labels
        self.calls: dict[str, list[Call]] = {label: [] for label in labels}
        self._met: dict[str, bool] = {}
        self._barrier = threading.Barrier(len(labels), timeout=timeout)
        self._lock = threading.Lock()

    def wrap(self, label: str, func: F) -> F:
        """Return ``func`` spied on under ``label`` (one of ``labels``)."""
        if label not in self.calls:
            raise ValueError(f"label {label!r} is not one of {self.labels}")

        @functools.wraps(func)
        def spy(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                first = label not in self._met
                self._met.setdefault(label, False)
                self.calls[label].append(Call(threading.get_ident(), args))
            if first:
                try:
                    self._barrier.wait()
                    self._met[label] = True
                except threading.BrokenBarrierError:
                    pass  # the other call never started while this one waited: serial
            return func(*args, **kwargs)

        return cast(F, spy)

    @property
    def overlapped(self) -> bool:
        """True when every label's first call was running while all the others' were."""
        return len(self._met) == len(self.labels) and all(self._met.values())

    def first(self, label: str) -> Call:
        """The first call seen under ``label``."""
        return self.calls[label][0]


def lake_state(lake: Any, staging: bool = True) -> dict[str, Any]:
    """What a call that raised must leave unchanged in a local lake: commits, records, objects, versions
    (and, with ``staging``, its staging files)."""
    from limnos.store import LocalObjectStore

    assert isinstance(lake.store, LocalObjectStore)
    state = {
        "commits": sorted(lake.catalog.commit_ids()),
        "records": lake.store.list_records(),
        "objects": sorted(o.hash for o in lake.store.iter_objects()),
        "files": lake.catalog.count_files(),
    }
    if staging:
        state["staging"] = sorted(p.name for p in Path(lake.path, "tmp").iterdir())
    return state


def doc_block(page: str, first_line: str, language: str = "python") -> str:
    """The code block of ``docs/<page>`` that starts with ``first_line``, so a page and the test that runs it agree.

    Raises:
        AssertionError: the page has no such block.
    """
    import re

    path = Path(__file__).resolve().parents[1] / "docs" / page
    for block in re.findall(rf"```{language}\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
        if block.startswith(first_line + "\n"):
            return block
    raise AssertionError(f"no {language} block starting with {first_line!r} in {path}")
