"""Progress bars for long work: shown on a terminal and in Jupyter, silent when piped.

The library shows them too (not only the CLI), since ``lake.add`` of a big
folder from a notebook deserves one. ``LIMNOS_PROGRESS=0`` turns them off.

On a terminal the bars are rich's. Under a Jupyter kernel (ipykernel: stderr is
no terminal there) a bar is an HTML ``<progress>`` element shown with
``IPython.display`` and updated in place through its display id, at most five
times a second; when the work is done it stays as one line saying what was done
and how long it took. That needs nothing but IPython, which every kernel has:
rich's and tqdm's notebook bars need ipywidgets and its front-end extension, and
without them print a warning instead of a bar.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

#: ``advance(n)``: n more units of work are done
Advance = Callable[[int], None]


#: seconds between two redraws of a notebook bar
NOTEBOOK_REFRESH = 0.2


def in_notebook() -> bool:
    """True inside a Jupyter kernel (ipykernel, also under VS Code or Colab); False in a terminal IPython or a script.

    Only a kernel's shell has a ``kernel``; IPython is looked up in ``sys.modules``
    rather than imported, since a process that never imported it is no notebook.
    """
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    if get is None:
        return False
    try:
        shell = get()
    except Exception:  # a half-torn-down interpreter: no notebook to draw in
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def enabled() -> bool:
    """True when bars should be drawn: stderr is a terminal, or this is a Jupyter kernel; and ``LIMNOS_PROGRESS`` is not ``0``."""
    if os.environ.get("LIMNOS_PROGRESS", "1") == "0":
        return False
    return sys.stderr.isatty() or in_notebook()


class NotebookBars:
    """One or more bars drawn as HTML in a notebook cell, updated in place through a display id.

    ``advance`` may be called from any thread (downloads run in pools); redraws
    are throttled to :data:`NOTEBOOK_REFRESH`, and :meth:`close` draws the final state.
    """

    def __init__(self, description: str, bars: list[tuple[int | None, str]]) -> None:
        """``bars``: (total or None, unit) for each bar; the first is labelled ``description``."""
        import importlib

        ipython_display: Any = importlib.import_module("IPython.display")  # untyped: called through Any
        self._html: Any = ipython_display.HTML
        display = ipython_display.display
        self._description = description
        self._totals = [total for total, _ in bars]
        self._units = [unit for _, unit in bars]
        self._done = [0] * len(bars)
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._drawn = 0.0
        self._handle: Any = display(self._html(self._render(final=False)), display_id=True)

    def advance(self, index: int, n: int) -> None:
        """Count ``n`` more units done on bar ``index``; redraw if the last redraw is old enough."""
        with self._lock:
            self._done[index] += n
            now = time.monotonic()
            if now - self._drawn < NOTEBOOK_REFRESH:
                return
            self._drawn = now
            markup = self._render(final=False)
        self._update(markup)

    def close(self) -> None:
        """Draw the final state: what was done and how long it took; a bar that counted nothing is removed."""
        with self._lock:
            markup = self._render(final=True) if any(self._done) else ""
        self._update(markup)

    def _update(self, markup: str) -> None:
        if self._handle is not None:
            self._handle.update(self._html(markup))

    def _render(self, final: bool) -> str:
        from .render_html import text

        elapsed = time.monotonic() - self._started
        rows = []
        for i, (total, unit) in enumerate(zip(self._totals, self._units, strict=True)):
            done = self._done[i]
            amount = _amount(done, unit) + (f" of {_amount(total, unit)}" if total else "")
            label = self._description if i == 0 else ""
            bar = "" if final else (f'<progress value="{done}" max="{total}"></progress>' if total
                                    else "<progress></progress>")
            rows.append(f"<div><b>{text(label)}</b> {bar} {text(amount)}</div>")
        took = f"done in {elapsed:.1f} s" if final else f"{elapsed:.1f} s"
        return f'<div class="limnos-progress">{"".join(rows)}<div style="color:#888">{text(took)}</div></div>'


def _amount(n: int, unit: str) -> str:
    """``n`` units as people read them: bytes scaled (``12.3 MB``), other units counted (``1,204 files``)."""
    if unit != "bytes":
        return f"{n:,} {unit}"
    size = float(n)
    for prefix in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or prefix == "TB":
            return f"{size:.0f} {prefix}" if prefix == "B" else f"{size:.1f} {prefix}"
        size /= 1000
    return f"{n} B"  # pragma: no cover - the loop always returns


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
    if in_notebook():
        bars = NotebookBars(description, [(total, unit)])

        def advance_notebook(n: int = 1) -> None:
            bars.advance(0, n)

        try:
            yield advance_notebook
        finally:
            bars.close()
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
                 bytes_task: TaskID | None = None, notebook: NotebookBars | None = None) -> None:
        self._bar, self._files, self._bytes = bar, files_task, bytes_task
        self._notebook = notebook

    def __call__(self, files: int = 1, nbytes: int = 0) -> None:
        """Count ``files`` more files and ``nbytes`` more bytes as done."""
        if self._notebook is not None:
            self._notebook.advance(0, files)
            if nbytes:
                self._notebook.advance(1, nbytes)
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
    if in_notebook():
        bars = NotebookBars(description, [(files, "files"), (nbytes or None, "bytes")])
        try:
            yield TransferAdvance(notebook=bars)
        finally:
            bars.close()
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
