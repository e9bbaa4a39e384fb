"""Consoles, one-line messages, JSON and the short text formats every drawing uses.

Human output goes through rich: data on stdout, messages on stderr. When stdout
is not a terminal, its console gets a wide fixed width so piped output is never
cut. Nothing here decides anything about the lake; it only formats.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import shlex
import unicodedata
from collections.abc import Iterable, Sized
from typing import TYPE_CHECKING, Any

# rich is imported inside the functions that draw: a listing piped to another
# program, or --help, never loads it (see render/lines.py).
if TYPE_CHECKING:
    from rich.console import Console, RenderableType

from ...times import parse_timestamp

PIPE_WIDTH = 200  # columns used when stdout is not a terminal: wide enough that nothing is cut
#: -1 quiet (``-q``: no messages), 0 normal, 1 and more: ``-v``, ``-vv`` (see :func:`set_verbosity`)
_verbosity = 0
#: Unicode categories a terminal obeys or hides instead of showing: controls (ESC...), format characters
#: (bidi overrides, zero-width), surrogates, private use, unassigned, line and paragraph separators
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(value: object) -> str:
    """``str(value)`` with every character a terminal would obey or hide shown as an escape (``\\x1b``, ``\\u202e``).

    Everything the CLI prints that came from the lake (names, metadata, users,
    hosts, messages about them) goes through this, so a crafted name cannot
    move the cursor, recolour the terminal, set its title or read backwards.
    Ordinary text, accents and emoji included, comes out unchanged.
    """
    text = str(value)
    if text.isprintable():  # the common case, in C: no character to escape
        return text
    return "".join(ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in _HIDDEN else ch
                   for ch in text)


# ----------------------------------------------------------------- consoles
def out_console() -> Console:
    """A console on stdout, for data."""
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(highlight=False, width=PIPE_WIDTH)
    return console


def err_console() -> Console:
    """A console on stderr, for messages."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def show(*renderables: RenderableType, soft_wrap: bool = False) -> None:
    """Print drawings on stdout, one after the other.

    Args:
        renderables: What to print (tables, panels, texts...).
        soft_wrap: Never wrap long lines (for line-oriented output such as ``status``).
    """
    console = out_console()
    for renderable in renderables:
        console.print(renderable, soft_wrap=soft_wrap)


def print_all(console: Console, renderables: Iterable[RenderableType]) -> None:
    """Print several drawings on ``console`` as one group (no blank line added between them)."""
    from rich.console import Group

    console.print(Group(*renderables))


def set_verbosity(level: int) -> None:
    """How much the command says on stderr: -1 (``-q``) only warnings and errors, 0 normal, 1 or 2 (``-v``, ``-vv``) more."""
    global _verbosity
    _verbosity = level


def verbosity() -> int:
    """The level :func:`set_verbosity` set: -1 quiet, 0 normal, 1 or more verbose."""
    return _verbosity


def message(text: str, style: str | None = None, *, always: bool = False) -> None:
    """One line on stderr, never wrapped, never read as rich markup, unprintable characters escaped.

    Args:
        text: The line.
        style: A rich style, such as ``"dim"``.
        always: Print it under ``-q`` too (what ``-v`` asked for).
    """
    if _verbosity < 0 and not always:
        return
    from rich.text import Text

    err_console().print(Text(printable(text), style=style or ""), soft_wrap=True)


def error_line(text: str) -> None:
    """``error: text`` on stderr, on one line whatever the text holds (unprintable characters escaped)."""
    from rich.text import Text

    err_console().print(Text.assemble(("error: ", "bold red"), printable(text.replace("\n", " "))), soft_wrap=True)


def warning_line(text: str) -> None:
    """``warning: text`` on stderr, on one line whatever the text holds (unprintable characters escaped)."""
    from rich.text import Text

    err_console().print(Text.assemble(("warning: ", "yellow"), printable(text.replace("\n", " "))), soft_wrap=True)


# --------------------------------------------------------------------- JSON
def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def dumps(data: Any) -> str:
    """Indented JSON; datetimes as ISO strings, bytes as hex, sets as lists, anything else as its text."""
    return json.dumps(data, indent=2, default=_json_default, ensure_ascii=False)


def print_json(data: Any) -> None:
    """JSON on stdout (see :func:`dumps`)."""
    print(dumps(data), flush=True)


# ------------------------------------------------------------------ formats
def size(n: int | None) -> str:
    """A byte count for people (``1.0 kB``); ``-`` when unknown."""
    from rich.filesize import decimal

    return "-" if n is None or n < 0 else decimal(n)


def who(user: str | None, host: str | None) -> str:
    """Who made something, and where: ``alice@host``, or ``alice@example.org on host`` for an email."""
    user, host = user or "?", host or "?"
    return f"{user} on {host}" if "@" in user else f"{user}@{host}"


def short_hash(digest: str | None) -> str:
    """The first 12 hex digits of a digest; ``-`` when there is none."""
    return digest[:12] if digest else "-"


def count(items: Sized, noun: str) -> str:
    """``1 file``, ``3 files``: how many items, with the noun in the right number."""
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def when(value: Any) -> str:
    """A datetime (or an ISO string) in the local time zone, to the second."""
    if isinstance(value, str):
        try:
            value = parse_timestamp(value)
        except ValueError:
            return str(value)
    if not isinstance(value, dt.datetime):
        return "-" if value is None else str(value)
    return _local_time(value)


@functools.lru_cache(maxsize=256)  # a listing repeats a commit's time for each of its files: format it once
def _local_time(value: dt.datetime) -> str:
    moment = value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """``12 ms``, ``3.50 s`` or ``2.5 min``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def value_text(value: Any) -> str:
    """A metadata value as text: datetimes in ISO form, dicts and lists as JSON, unprintable characters escaped."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=_json_default)  # ASCII: JSON escapes the rest
    return printable(value)


def type_name(value: Any) -> str:
    """The metadata type of a value as limnos names it: int, float, bool, str, datetime or json."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, (dict, list)):
        return "json"
    return type(value).__name__


def argv_text(argv: Any, limit: int = 80) -> str:
    """A recorded command line as a shell would show it, the program by its base name, cut at ``limit``."""
    if not argv:
        return "-"
    parts = [os.path.basename(str(argv[0]))] + [str(a) for a in argv[1:]]
    text = printable(shlex.join(parts))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def params_text(params: Any, limit: int = 60) -> str:
    """``a=1, files=[raw/a.csv@1]``: a step's recorded parameters, short."""
    def show_value(v: Any) -> str:
        if isinstance(v, dict) and "$file" in v:
            return str(v["$file"])
        if isinstance(v, list):
            return "[" + ", ".join(show_value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {show_value(x)}" for k, x in v.items()) + "}"
        return json.dumps(v, default=_json_default)

    if not isinstance(params, dict) or not params:
        return "-"
    text = printable(", ".join(f"{k}={show_value(v)}" for k, v in params.items()))
    return text if len(text) <= limit else text[: limit - 1] + "…"
