"""Runs and implicit lineage, and the step execution running in this context.

A *run* is the provenance of one process or ``with lake.run(...)`` block.
Every file a run reads is remembered in first-read order; files it writes
later list those reads as their inputs (ElliptIO's implicit lineage).

A ``@step`` call sets the :data:`current step execution <current_execution>`
for the duration of the wrapped function, so that ``lake.create`` and
``limnos.output`` inside it stage outputs of the step, and reads inside it
become the step's inputs. The execution object lives here, in the kernel,
so that the kernel never imports the ``steps`` feature.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import StepOutputError
from ..names import new_id, validate_name
from .files import File, PendingFile, Writer

if TYPE_CHECKING:
    from .base import LakeBase


def now() -> dt.datetime:
    """The current time in UTC: every timestamp limnos records is timezone-aware UTC."""
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class RunState:
    """The current run: its id, when it began, and the files it has read, in order."""

    id: str = field(default_factory=new_id)
    started_at: dt.datetime = field(default_factory=now)
    name: str | None = None
    config: Any = None
    #: an ordered set of the ids of the files read so far
    reads: dict[str, None] = field(default_factory=dict)
    #: the provenance row (user, host, argv, git...), collected on the first commit
    info: dict[str, Any] | None = None


@dataclass
class StagedOutput:
    """One output a step execution has written to a staging file."""

    writer: Writer
    #: None: named ``steps/<function>/<key16>/<position>`` at commit
    name: str | None
    metadata: dict[str, Any]


@dataclass
class StepExecution:
    """One running step execution: where its outputs are staged and which files it read."""

    lake: LakeBase
    #: the ``limnos.steps.Step`` being executed (typed loosely: the kernel does not import steps)
    step: Any
    key: str
    staged: list[StagedOutput] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    reads: dict[str, File] = field(default_factory=dict)

    @property
    def function(self) -> str:
        """The step's ``module.qualname``, for messages."""
        return str(getattr(self.step, "function", "?"))

    @contextlib.contextmanager
    def output(self, name: str | None, metadata: Mapping[str, Any] | None) -> Iterator[Writer]:
        """Stage one output of this execution; it is committed with the step.

        Raises:
            StepOutputError: the execution already wrote an output of this name.
        """
        if name is not None:
            name = validate_name(name)  # in NFC, the one spelling of a name
            if name in self.names:
                raise StepOutputError(f"step {self.function} writes output {name!r} twice in one call; "
                                      "give each output its own name")
        self.lake.check_metadata(metadata)  # bad metadata fails before any work
        suffix = os.path.splitext(name or "")[1]
        path = self.lake.staging_path(suffix if len(suffix) <= 16 else "")
        writer = Writer(name or "(unnamed step output)", path)
        try:
            yield writer
        except BaseException:
            unlink_quietly(path)
            raise
        if name is not None:
            self.names.add(name)
        # ``return w.file`` is what radops and ElliptIO users write: a File that the step's commit makes real.
        writer.file = PendingFile(self.lake, writer)
        self.staged.append(StagedOutput(writer, name, dict(metadata or {})))

    def discard(self) -> None:
        """Remove every staged output (the step failed, or another writer won)."""
        for staged in self.staged:
            unlink_quietly(staged.writer.path)


def unlink_quietly(path: str) -> None:
    """Remove ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


#: The step execution running in this thread or task, if any.
current_execution: contextvars.ContextVar[StepExecution | None] = contextvars.ContextVar(
    "limnos_step", default=None)


def current_call(lake: LakeBase | None = None) -> StepExecution | None:
    """The step execution running in this thread or task (for ``lake``, when given)."""
    call = current_execution.get()
    if call is None or (lake is not None and call.lake is not lake):
        return None
    return call


@contextlib.contextmanager
def executing(call: StepExecution) -> Iterator[StepExecution]:
    """Make ``call`` the current step execution for the duration of the block."""
    token = current_execution.set(call)
    try:
        yield call
    finally:
        current_execution.reset(token)


def note_read(lake: LakeBase, file: File) -> None:
    """Called for every read: a read inside a step becomes one of its lineage inputs."""
    call = current_execution.get()
    if call is not None and call.lake is lake:
        call.reads.setdefault(file.id, file)
