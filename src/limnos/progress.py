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
