"""The writer guard: writers share it, gc's delete phase holds it alone.

gc deletes objects that no file refers to. A writer that decides to reuse an
object that is already stored (or stores a new one) refers to it only once
its catalog commit is in, so between those two moments gc must not delete
it. Writers therefore hold the guard SHARED from the moment they look for
or store an object until their commit has finished (or failed); gc holds it
EXCLUSIVE while it re-reads what is referenced and deletes. gc's listing and
planning take no lock, so they never block a writer, and a writer waits
only for gc's short delete phase.

Where the lock lives:

* a SQLite catalog: ``flock`` on ``<catalog>.gc-lock`` beside the database
  file. ``flock`` grants shared locks while an exclusive one waits, so a busy
  set of writers could starve gc; a second file, ``<catalog>.gc-gate``, fixes
  that: a writer passes the gate (shared, for an instant) before it takes the
  lock, and gc holds the gate exclusive while it waits, so no new writer
  starts meanwhile.
* a PostgreSQL catalog: ``pg_advisory_lock_shared`` / ``pg_advisory_lock`` on
  one key, on a connection held for the purpose. PostgreSQL queues a shared
  request behind a waiting exclusive one, so gc is never starved.
* an in-memory SQLite catalog (one process): a plain in-process lock.

Within one process the shared hold is counted, not repeated: the first
writing thread takes it, the last one out releases it, and a thread that
re-enters (a step that creates files) just counts up. This also means a
writer thread that waits for a helper thread which writes too cannot
deadlock against a waiting gc.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import threading
import weakref
from collections.abc import Iterator

import sqlalchemy as sa

from ..errors import GcRefused

log = logging.getLogger("limnos")

#: The PostgreSQL advisory lock key of the writer guard ("limnos" + 1).
PG_KEY = 0x6C696D6E6F730001
_SHARED, _EXCLUSIVE = fcntl.LOCK_SH, fcntl.LOCK_EX


class WriterGuard:
    """Shared for writers, exclusive for gc's delete phase; one per catalog (see the module docstring)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._mutex = threading.Lock()  # guards the count and the held resources
        self._holders = 0
        self._depth = threading.local()
        self._held: object = None  # what keeps the shared lock: a file descriptor or a connection
        self._local = threading.Lock()  # in-memory catalogs: writers and gc of this process only
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._path = os.path.abspath(database) if database and database != ":memory:" else None
        _guards.add(self)
        if self._path is not None:  # made now, while there is room: gc on a full disk still finds them
            for suffix in (".gc-gate", ".gc-lock"):
                with contextlib.suppress(OSError):
                    fd = _open_lock(self._path + suffix)
                    if fd is not None:
                        os.close(fd)

    def _forget(self) -> None:
        # A forked child holds none of its parent's locks (nor may it use its connections).
        self._mutex = threading.Lock()
        self._holders = 0
        self._depth = threading.local()
        self._held = None

    def held_by_this_thread(self) -> bool:
        """True inside :meth:`shared` on this thread."""
        return bool(getattr(self._depth, "n", 0))

    # -- writers ----------------------------------------------------------------
    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the guard shared for the block: gc deletes nothing meanwhile. Re-entrant."""
        depth = getattr(self._depth, "n", 0)
        self._depth.n = depth + 1
        try:
            if depth:
                yield
                return
            with self._mutex:
                if self._holders == 0:
                    self._held = self._acquire_shared()
                self._holders += 1
            try:
                yield
            finally:
                with self._mutex:
                    self._holders -= 1
                    if self._holders == 0:
                        held, self._held = self._held, None
                        self._release_shared(held)
        finally:
            self._depth.n = depth

    def _acquire_shared(self) -> object:
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                conn.execute(sa.text("SELECT pg_advisory_lock_shared(:k)"), {"k": _signed(PG_KEY)})
            except BaseException:
                conn.invalidate()
                conn.close()
                raise
            return conn
        if self._path is None:
            return None  # in-memory: writers need not exclude each other
        gate = _open_lock(self._path + ".gc-gate")
        if gate is None:
            return None
        try:
            fcntl.flock(gate, _SHARED)  # waits while gc wants the lock: no new writer starts then
            fd = _open_lock(self._path + ".gc-lock")
            if fd is not None:
                fcntl.flock(fd, _SHARED)
            return fd
        finally:
            os.close(gate)  # closing drops the gate at once

    def _release_shared(self, held: object) -> None:
        if isinstance(held, sa.Connection):
            try:
                held.execute(sa.text("SELECT pg_advisory_unlock_shared(:k)"), {"k": _signed(PG_KEY)})
                held.close()
            except Exception:  # the session ends with the connection, and its locks with it
                held.invalidate()
                held.close()
        elif isinstance(held, int):
            os.close(held)  # closing the descriptor releases its flock

    # -- gc -----------------------------------------------------------------------
    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the guard alone for the block, once every writer in flight has finished.

        Raises:
            GcRefused: this thread is itself inside a write (it would wait for itself forever).
        """
        if self.held_by_this_thread():
            raise GcRefused("gc cannot run inside lake.writing() (or a write in progress on this thread); "
                            "call it after the write")
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _signed(PG_KEY)})
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _signed(PG_KEY)})
            return
        if self._path is None:
            with self._local:
                yield
            return
        gate = _open_lock(self._path + ".gc-gate")
        fd = _open_lock(self._path + ".gc-lock")
        if gate is None or fd is None:
            log.warning("cannot create the gc lock files beside %s; gc runs without waiting for writers", self._path)
        try:
            if gate is not None:
                fcntl.flock(gate, _EXCLUSIVE)
            if fd is not None:
                fcntl.flock(fd, _EXCLUSIVE)
            yield
        finally:
            for held in (fd, gate):
                if held is not None:
                    os.close(held)


_guards: weakref.WeakSet[WriterGuard] = weakref.WeakSet()


def _forget_all() -> None:
    for guard in list(_guards):
        guard._forget()


os.register_at_fork(after_in_child=_forget_all)


def _open_lock(path: str) -> int | None:
    """A descriptor on the lock file ``path`` (created if needed); None when it cannot be created.

    A full disk or a read-only folder cannot take a new file. Writers there fail on
    their own catalog write anyway, so the guard is skipped rather than made the error.
    """
    try:
        return os.open(path, os.O_RDONLY)  # flock needs no write access: a lake shared by a group works
    except FileNotFoundError:
        pass
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT):
            return None
        raise


def _signed(key: int) -> int:
    """``key`` as PostgreSQL's signed bigint."""
    return key - (1 << 64) if key >= 1 << 63 else key
