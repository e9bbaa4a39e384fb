"""How the CLI reports a failure: one ``error: ...`` line on stderr and exit code 1.

Every error a command raises on purpose goes through :func:`error_shell`:
library errors (:class:`~limnos.errors.LimnosError`), problems with the
command line (:class:`CliError`), and the usual ``OSError``/``ValueError``/
``KeyError`` become their message; anything else is named with its type and a
pointer to ``LIMNOS_DEBUG=1``, which shows the traceback instead.

:data:`HINTS` is where the CLI adds advice that only makes sense on a command
line (``run 'limnos gc'``): a hint function per library error class, whose
text follows the library's message after ``; ``. The library's messages can
then speak Python while the CLI speaks shell.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer

from limnos.errors import FileHasDependents, LimnosError, StoreFull, TeamLakeTarget, TeamModeUnsupported

from . import render
from .advice import shell_advice

DEBUG_ENV = "LIMNOS_DEBUG"
BROKEN_PIPE_EXIT = 141  # what a shell reports for a process killed by SIGPIPE (128 + 13)
INTERRUPT_EXIT = 130  # what a shell reports for a process stopped by Ctrl-C (128 + SIGINT)


class CliError(Exception):
    """A problem with the command line itself, found before calling the library."""


Hint = Callable[[LimnosError], str | None]

#: CLI advice per library error class (subclasses included: the nearest class in the MRO wins).
#: A hint function gets the exception and returns the text to add after its message, or None for none.
HINTS: dict[type[LimnosError], Hint] = {
    FileHasDependents: lambda exc: f"'limnos rm {shlex.quote(getattr(exc, 'ref', None) or 'REF')} --cascade' deletes them too, "
                                   "'--keep-dependents' keeps them (their lineage shows it as removed)",
    StoreFull: lambda _exc: "'limnos gc --yes' deletes unreferenced objects older than a day "
                            "(--grace-days 0: all of them, when no other writer is running)",
    TeamLakeTarget: lambda exc: _pull_into(getattr(exc, "url", None) or "URL"),
    TeamModeUnsupported: lambda _exc: "share a PostgreSQL catalog ('limnos init URL --catalog postgresql://...'), "
                                      "or pass --no-team for a lake that only this machine writes",
}


def _pull_into(url: str) -> str:
    return (f"pull into it instead: 'limnos --lake {url} remote add mine PATH-OF-THIS-LAKE', "
            f"then 'limnos --lake {url} pull --remote mine'")


def debug_enabled() -> bool:
    """True when ``LIMNOS_DEBUG=1``: errors keep their traceback."""
    return os.environ.get(DEBUG_ENV) == "1"


def hint_for(exc: BaseException) -> str | None:
    """The CLI hint registered in :data:`HINTS` for this error's class (or its nearest base class), if any."""
    if not isinstance(exc, LimnosError):
        return None
    for cls in type(exc).__mro__:
        hint = HINTS.get(cls) if issubclass(cls, LimnosError) else None
        if hint is not None:
            return hint(exc)
    return None


def describe(exc: BaseException) -> str:
    """The first line of an error's message as the CLI shows it (without the ``error:`` prefix or a hint).

    Errors raised on purpose show their message; an ``OSError`` its reason and
    file name; anything else its type, as a bug, with a pointer to LIMNOS_DEBUG.
    """
    if isinstance(exc, OSError) and not isinstance(exc, LimnosError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    if isinstance(exc, LimnosError):
        text = exc.message
        return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if isinstance(exc, (CliError, ValueError, OSError, KeyError)):
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first} (set {DEBUG_ENV}=1 to see the traceback)"


def error_message(exc: BaseException) -> str:
    """The whole ``error:`` line's text: the description, then the advice.

    The advice is the CLI hint registered for the error's class, else the
    library's own hint turned into a command (:func:`shell_advice`).
    """
    text = describe(exc)
    hint = hint_for(exc)
    if hint is None and isinstance(exc, LimnosError) and exc.hint:
        hint = shell_advice(exc.hint)
    return f"{text}; {hint}" if hint else text


def print_error(exc: BaseException) -> None:
    """Print ``error: <message>`` on stderr, on one line."""
    render.error_line(error_message(exc))


def is_click_exception(exc: BaseException) -> bool:
    """True for click's own exceptions (usage errors, aborts): click prints those itself."""
    return any(c.__module__.startswith(("typer._click", "click")) for c in type(exc).__mro__
               if c is not Exception and c is not BaseException and c is not object)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that flushing it at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def interrupt_message(exc: KeyboardInterrupt) -> str:
    """The ``interrupted:`` line's text: what the interrupted call says was (not) committed, else the rule."""
    notes = [str(n) for n in getattr(exc, "__notes__", None) or [] if str(n).strip()]
    if notes:
        return "; ".join(notes)
    return "a commit in progress was not made; commits already done are kept"


def print_interrupted(exc: KeyboardInterrupt) -> None:
    """Print ``interrupted: <what was and was not committed>`` on stderr, on one line."""
    text = interrupt_message(exc).replace("\n", " ")
    from rich.text import Text  # only on Ctrl-C: rich loads when something is drawn

    render.err_console().print(Text.assemble(("interrupted: ", "bold yellow"), text), soft_wrap=True)


@contextmanager
def error_shell() -> Iterator[None]:
    """Run a command: its errors become one ``error:`` line and exit code 1.

    A reader that went away (``limnos cat x | head``) stops the command quietly
    with exit code 141. Ctrl-C prints one ``interrupted:`` line saying what was
    and was not committed, and exits with 130. Click's own exceptions,
    ``typer.Exit`` and, with ``LIMNOS_DEBUG=1``, every error pass through untouched.

    Raises:
        typer.Exit: With code 1 after printing the error, 141 on a broken pipe, 130 on Ctrl-C.
    """
    try:
        yield
    except BrokenPipeError:
        _silence_stdout()
        raise typer.Exit(BROKEN_PIPE_EXIT) from None
    except KeyboardInterrupt as exc:
        if debug_enabled():
            raise
        print_interrupted(exc)
        raise typer.Exit(INTERRUPT_EXIT) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if is_click_exception(exc) or debug_enabled():
            raise
        print_error(exc)
        raise typer.Exit(1) from None
