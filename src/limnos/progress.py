"""Progress bars for long work: shown on a terminal, silent when piped.

The library shows them too (not only the CLI), since ``lake.add`` of a big
folder from a notebook deserves one. ``LIMNOS_PROGRESS=0`` turns them off.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

#: ``advance(n)``: n more units of work are done
Advance = Callable[[int], None]


def enabled() -> bool:
    """True when bars should be drawn: stderr is a terminal and ``LIMNOS_PROGRESS`` is not ``0``."""
    if os.environ.get("LIMNOS_PROGRESS", "1") == "0":
        return False
    return sys.stderr.isatty()


def _ignore(n: int = 1) -> None:
    """The ``advance`` of a bar that is not drawn."""


@contextlib.contextmanager
def progress(total: int | None, description: str, unit: str = "files") -> Iterator[Advance]:
    """A progress bar for ``total`` units of work, drawn on stderr when it is a terminal.

    Args:
        total: how many units there are (None: unknown). Fewer than 2 draws nothing.
        description: the bar's label, such as ``"verifying"``.
        unit: what a unit is, shown after the count.

    Returns:
        A context manager yielding ``advance(n)``, to call as work gets done.
    """
    if not enabled() or (total is not None and total < 2):
        yield _ignore
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance


class TransferAdvance:
    """Advances a files bar and a bytes bar together: ``advance(files, nbytes)``."""

    def __init__(self, bar: Progress | None = None, files_task: TaskID | None = None,
                 bytes_task: TaskID | None = None) -> None:
        self._bar, self._files, self._bytes = bar, files_task, bytes_task

    def __call__(self, files: int = 1, nbytes: int = 0) -> None:
        """Count ``files`` more files and ``nbytes`` more bytes as done."""
        if self._bar is not None and self._files is not None and self._bytes is not None:
            self._bar.advance(self._files, files)
            self._bar.advance(self._bytes, nbytes)


@contextlib.contextmanager
def transfer_progress(files: int, nbytes: int, description: str) -> Iterator[TransferAdvance]:
    """Two bars for push, pull and prune: files and bytes, each with its rate.

    Args:
        files: how many files will move. Fewer than 2 draws nothing.
        nbytes: how many bytes they hold (0: unknown).
        description: the label, such as ``"pushing"``.

    Returns:
        A context manager yielding a :class:`TransferAdvance`.
    """
    if not enabled() or files < 2:
        yield TransferAdvance()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            if task.fields.get("kind") != "files":
                return Text("")
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} files/s" if speed else "", style="progress.data.speed")

    class AmountColumn(ProgressColumn):
        def __init__(self) -> None:
            super().__init__()
            self._files, self._bytes = MofNCompleteColumn(), DownloadColumn()

        def render(self, task: Task) -> Text:
            return self._files.render(task) if task.fields.get("kind") == "files" else self._bytes.render(task)

    class SpeedColumn(ProgressColumn):
        def __init__(self) -> None:
            super().__init__()
            self._rate, self._speed = RateColumn(), TransferSpeedColumn()

        def render(self, task: Task) -> Text:
            return self._rate.render(task) if task.fields.get("kind") == "files" else self._speed.render(task)

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), AmountColumn(), SpeedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        files_task = bar.add_task(description, total=files, kind="files")
        bytes_task = bar.add_task("", total=nbytes or None, kind="bytes")
        yield TransferAdvance(bar, files_task, bytes_task)
