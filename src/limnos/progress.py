"""Progress bars for long work: shown on a terminal, silent when piped.

The library shows them too (not only the CLI), since ``lake.add`` of a big
folder from a notebook deserves one. ``LIMNOS_PROGRESS=0`` turns them off.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

Advance = Callable[[int], None]


def enabled() -> bool:
    if os.environ.get("LIMNOS_PROGRESS", "1") == "0":
        return False
    return sys.stderr.isatty()


@contextlib.contextmanager
def progress(total: int | None, description: str, unit: str = "files") -> Iterator[Advance]:
    """Yield ``advance(n)``; draws a rich bar on stderr when it is a terminal."""
    if not enabled() or (total is not None and total < 2):
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


class _Transfer:
    """Advances a files bar and a bytes bar together."""

    def __init__(self, bar: object | None, files_task: int | None, bytes_task: int | None) -> None:
        self._bar, self._files, self._bytes = bar, files_task, bytes_task

    def __call__(self, files: int = 1, nbytes: int = 0) -> None:
        if self._bar is not None:
            self._bar.advance(self._files, files)  # type: ignore[attr-defined]
            self._bar.advance(self._bytes, nbytes)  # type: ignore[attr-defined]


@contextlib.contextmanager
def transfer_progress(files: int, nbytes: int, description: str) -> Iterator[_Transfer]:
    """A bar for push, pull and prune: files and bytes, each with its rate."""
    if not enabled() or files < 2:
        yield _Transfer(None, None, None)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:  # type: ignore[no-untyped-def, override]
            if task.fields.get("kind") != "files":
                return Text("")
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} files/s" if speed else "", style="progress.data.speed")

    class AmountColumn(ProgressColumn):
        def __init__(self) -> None:
            super().__init__()
            self._files, self._bytes = MofNCompleteColumn(), DownloadColumn()

        def render(self, task) -> Text:  # type: ignore[no-untyped-def, override]
            return self._files.render(task) if task.fields.get("kind") == "files" else self._bytes.render(task)  # type: ignore[return-value]

    class SpeedColumn(ProgressColumn):
        def __init__(self) -> None:
            super().__init__()
            self._rate, self._speed = RateColumn(), TransferSpeedColumn()

        def render(self, task) -> Text:  # type: ignore[no-untyped-def, override]
            return self._rate.render(task) if task.fields.get("kind") == "files" else self._speed.render(task)  # type: ignore[return-value]

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), AmountColumn(), SpeedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        files_task = bar.add_task(description, total=files, kind="files")
        bytes_task = bar.add_task("", total=nbytes or None, kind="bytes")
        yield _Transfer(bar, files_task, bytes_task)
