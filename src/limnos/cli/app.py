"""The typer application and what every command module shares.

Command modules (``files_cmds``, ``lineage_cmds``, ``checks_cmds``,
``sync_cmds``, ``project_cmds``, ``ds_cmds``, ``demo``) import :data:`app`
from here and register their commands on it; ``cli/main.py`` imports them all
and runs it. Also here: the group class that turns errors into one
``error:`` line, the global ``--lake`` option and :func:`open_lake`, and the
parsers for ``key=value`` arguments.

Importing this module stays cheap (no SQLAlchemy, no pandas) so that
``limnos --help`` starts fast: a lake is only opened inside a command.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import inspect
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer._click.exceptions import UsageError
from typer.core import TyperCommand, TyperGroup

import limnos

from ..times import parse_timestamp
from . import render
from .completion import complete_ref
from .errors import CliError, error_shell
from .helptext import HelpMixin

if TYPE_CHECKING:
    from typer._click import Context as ClickContext  # what TyperGroup's methods take

    from limnos.lake import Lake
    from limnos.tracking.settings import ProjectSettings

#: The order ``limnos --help`` lists commands in: everyday ones first, groups last.
#: Commands missing here follow, in the order they were registered.
HELP_ORDER = (
    "init", "add", "ls", "info", "get", "cat", "history", "query", "lineage", "steps", "status", "fsck", "gc",
    "reindex", "demo", "push", "pull", "lock", "unlock", "rm", "datasets", "track", "checkout",
    "import-lazydata", "meta", "remote", "cache", "ds", "ui",
)


F = TypeVar("F", bound=Callable[..., Any])


class _LazyCoercion:
    """A parameter's value check that loads typer's own (built on pydantic, 50 ms of imports) only when needed.

    typer checks every parameter's value through a pydantic ``TypeAdapter``,
    built on first use, even for an option that was not given. Most values a
    command sees need no check: an option left out (None), a ``str`` (paths,
    names, refs), the ``-v`` count; those pass as they are. Any other value
    (``--limit 5``, ``--format tsv``, a list) goes to typer's check, as before.
    """

    def __init__(self, param: Any) -> None:
        self._param = param
        self._typer: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        """The value to call the command with, as typer's check would give it."""
        descriptor = param.type_descriptor
        if value is None:
            return () if param.multiple or param.nargs == -1 else None
        plain = descriptor.parameter_info.parser is None and not param.multiple and param.nargs == 1
        if plain and descriptor.annotation is str and isinstance(value, str):
            return value
        if plain and getattr(param, "count", False) and isinstance(value, int) and not isinstance(value, bool):
            return value
        if self._typer is None:
            from typer._coercion import build_runtime_param

            self._typer = build_runtime_param(descriptor)
        return self._typer.coerce(value, param, ctx)


def _lazy_coercion(params: list[Any]) -> None:
    """Give each of typer's parameters a :class:`_LazyCoercion` (a parameter of another kind is left alone)."""
    for param in params:
        if getattr(param, "_runtime_param", False) is None and hasattr(param, "type_descriptor"):
            param._runtime_param = _LazyCoercion(param)


class Command(HelpMixin, TyperCommand):  # type: ignore[misc]  # HelpMixin's context_class is a click Context too
    """A limnos command: typer's, with the help layout of :mod:`.helptext` and :class:`_LazyCoercion`."""

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        """Parse as typer does, checking values with :class:`_LazyCoercion`."""
        _lazy_coercion(self.get_params(ctx))
        return super().parse_args(ctx, args)


class Group(HelpMixin, TyperGroup):  # type: ignore[misc]  # as Command
    """A command group whose commands' errors become one ``error:`` line and exit code 1 (see :mod:`.errors`)."""


    def invoke(self, ctx: ClickContext) -> Any:
        """Run the chosen command inside :func:`~limnos.cli.errors.error_shell`.

        A mistyped command or a bad option is one ``error:`` line too, not click's
        boxed usage text: exit 1 for an unknown command (with click's suggestion),
        2 for a bad option or value, as click has it.
        """
        with error_shell():
            try:
                return super().invoke(ctx)
            except UsageError as exc:
                if not exc.format_message().strip():  # a group run without a command: click printed its help
                    raise
                raise typer.Exit(usage_error(exc)) from None


    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        """Parse as typer does, checking values with :class:`_LazyCoercion`; a group run without a command prints
        its help on stdout: exit 2 for ``limnos`` (click's), 0 for a group."""
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            print(ctx.get_help())
            raise typer.Exit(2 if ctx.parent is None else 0)
        _lazy_coercion(self.get_params(ctx))
        return super().parse_args(ctx, args)


class RootGroup(Group):
    """The ``limnos`` group: lists its commands in :data:`HELP_ORDER`."""

    def list_commands(self, ctx: ClickContext) -> list[str]:
        """Command names in :data:`HELP_ORDER`, then any others in registration order."""
        rank = {name: i for i, name in enumerate(HELP_ORDER)}
        return sorted(super().list_commands(ctx), key=lambda name: rank.get(name, len(rank)))


def usage_error(exc: UsageError) -> int:
    """Print a usage error as one ``error:`` line naming the help to read; the exit code to use."""
    text = " ".join(exc.format_message().split())
    where = exc.ctx.command_path if exc.ctx is not None else "limnos"
    unknown = text.startswith("No such command")
    if unknown:  # "No such command 'lss'. Did you mean 'ls'?" -> "no such command 'lss'; did you mean 'ls'?"
        text = text[0].lower() + text[1:].replace(". Did you mean", "; did you mean")
    render.error_line(f"{text.rstrip('.')} (see '{where} -h')")
    return 1 if unknown else exc.exit_code


Quiet = Annotated[bool, typer.Option("--quiet", "-q",
                                     help="Print only data, warnings and errors: no messages, no progress bars.")]
Verbose = Annotated[int, typer.Option("--verbose", "-v", count=True, help="Say more: -v what the library logs, -vv its SQL too.")]


class _WithVerbosity:
    """A command function that also takes ``-q``/``-v``: they set :func:`set_verbosity`, then the function runs.

    Its signature (the function's, plus ``quiet`` and ``verbose``) is built when typer first asks for it, and
    once: typer reads every command's signature at every start, so building it at import would double the work.
    """

    def __init__(self, func: Callable[..., Any]) -> None:
        functools.update_wrapper(self, func)
        self._func = func
        self._signature: inspect.Signature | None = None

    @property
    def __signature__(self) -> inspect.Signature:
        """The function's parameters, then ``quiet`` and ``verbose`` (annotations evaluated, as typer wants them)."""
        if self._signature is None:
            signature = inspect.signature(self._func, eval_str=True)
            extra = [inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Quiet),
                     inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=0, annotation=Verbose)]
            self._signature = signature.replace(parameters=[*signature.parameters.values(), *extra])
        return self._signature

    def __call__(self, *args: Any, quiet: bool = False, verbose: int = 0, **kwargs: Any) -> Any:
        progress = os.environ.get("LIMNOS_PROGRESS")
        set_verbosity(-1 if quiet else verbose)
        try:
            return self._func(*args, **kwargs)
        finally:  # -q turned the library's bars off for this command only (it may run in a caller's process)
            if progress is None:
                os.environ.pop("LIMNOS_PROGRESS", None)
            else:
                os.environ["LIMNOS_PROGRESS"] = progress


def with_verbosity(func: F) -> F:
    """``func`` with the ``-q``/``-v`` options every command takes (see :class:`_WithVerbosity`)."""
    return _WithVerbosity(func)  # type: ignore[return-value]


def set_verbosity(level: int) -> None:
    """-1 quiet (no messages, no progress bars), 0 normal, 1 the library's info log, 2 and its SQL as well."""
    render.set_verbosity(level)
    if level < 0:
        os.environ["LIMNOS_PROGRESS"] = "0"  # the library's bars read it (limnos.progress)
    logger = logging.getLogger("limnos")
    logger.setLevel(logging.DEBUG if level >= 2 else logging.INFO if level == 1 else logging.WARNING)
    for handler in logger.handlers:
        if isinstance(handler, _LogHandler):
            handler.setLevel(logger.level)


class Typer(typer.Typer):
    """typer's application whose commands use :class:`Command` and take ``-q``/``-v`` (see :func:`with_verbosity`)."""

    def command(self, name: str | None = None, *, cls: type[TyperCommand] | None = None,
                **kwargs: Any) -> Callable[[F], F]:
        """Register a command, as ``typer.Typer.command`` does; the function is returned unchanged."""
        register = super().command(name, cls=cls or Command, **kwargs)

        def decorator(func: F) -> F:
            register(with_verbosity(func))
            return func

        return decorator


def sub_app(help_text: str, epilog: str) -> Typer:
    """A command group such as ``limnos remote``, with its help line and its example (``Example: limnos ...``).

    Register it on :data:`app` with ``app.add_typer(group, name=...)``; without a command it prints its help.
    """
    return Typer(cls=Group, help=help_text, epilog=epilog, no_args_is_help=True, rich_markup_mode=None)


app = Typer(
    cls=RootGroup,
    name="limnos",
    help="limnos: turn any folder into a content-addressed data lake for data science.",
    epilog="Example: limnos init && limnos add data/ --name raw && limnos ls",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion: bash, zsh, fish (see cli/completion.py)
    pretty_exceptions_enable=False,
    # Plain help (click's formatter): typer's rich help costs about 0.1 s of imports and drawing, two thirds
    # of the 0.15 s start-up budget, and shows <bool> metavars for flags.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


# ------------------------------------------------------- shared parameters
class LinkMode(str, enum.Enum):
    """How a working copy is made from the store."""

    copy = "copy"
    reflink = "reflink"
    hardlink = "hardlink"
    symlink = "symlink"


class OutputFormat(str, enum.Enum):
    """How a listing prints: a table for people, tab-separated lines for scripts, or JSON."""

    table = "table"
    tsv = "tsv"
    json = "json"


Ref = Annotated[str, typer.Argument(metavar="REF", help="name, name@N or id.", autocompletion=complete_ref)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]
FormatOption = Annotated[OutputFormat | None, typer.Option(
    "--format", help="table (the default on a terminal), tsv (the default when piped: one tab-separated line "
                     "per item) or json (the same as --json).")]
Limit = Annotated[int | None, typer.Option("--limit", min=0, metavar="N", help="At most N items.")]


def output_format(fmt: OutputFormat | None, as_json: bool = False) -> OutputFormat:
    """The format a listing prints in: ``--json`` or ``--format``, else a table on a terminal and tsv when piped.

    Raises:
        CliError: For ``--json`` with another ``--format``.
    """
    if as_json:
        if fmt not in (None, OutputFormat.json):
            raise CliError(f"--json and --format {fmt.value} disagree; give one of them")
        return OutputFormat.json
    if fmt is not None:
        return fmt
    return OutputFormat.table if sys.stdout.isatty() else OutputFormat.tsv


# ------------------------------------------------------- the root and lakes
class _LogHandler(logging.Handler):
    """Library warnings (such as a roll-forward on open) as ``warning:`` lines on the current stderr; with
    ``-v``, its info (and with ``-vv`` debug) records as plain lines."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            render.warning_line(record.getMessage())
        else:
            render.message(record.getMessage(), "dim", always=True)


def _version(value: bool) -> None:
    if value:
        print(f"limnos {limnos.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    lake: Annotated[str | None, typer.Option("--lake", envvar="LIMNOS_LAKE", metavar="PATH",
                                                help="The lake to use (default: the nearest .limnos/ above the cwd).")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """limnos: turn any folder into a content-addressed data lake for data science."""
    ctx.obj = {"lake_path": lake, "lake": None}
    logger = logging.getLogger("limnos")
    handler = _LogHandler(logging.WARNING)
    logger.addHandler(handler)
    ctx.call_on_close(lambda: logger.removeHandler(handler))


def _state(ctx: typer.Context) -> dict[str, Any]:
    """The root context's state: the --lake path and the lake once opened."""
    root = ctx.find_root()
    if not isinstance(root.obj, dict):
        root.obj = {}
    state: dict[str, Any] = root.obj
    return state


def lake_path(ctx: typer.Context) -> str | None:
    """The lake chosen by ``--lake`` or ``$LIMNOS_LAKE``; None to look for one from the cwd."""
    path = _state(ctx).get("lake_path")
    return path if isinstance(path, str) else None


def open_lake(ctx: typer.Context) -> Lake:
    """The lake chosen by ``--lake``, ``$LIMNOS_LAKE`` or the cwd, opened once per command and closed with it.

    Raises:
        LakeNotFound: When there is no lake there.
    """
    state = _state(ctx)
    lake: Lake | None = state.get("lake")
    if lake is None:
        settings = project_settings()
        lake = limnos.open(lake_path(ctx))
        state["lake"] = lake
        ctx.find_root().call_on_close(lake.close)
        if settings is not None and lake_path(ctx) is None:
            from limnos.tracking.project import use_project_remote

            use_project_remote(lake, settings)
    return lake


def project_settings() -> ProjectSettings | None:
    """The settings of the project at or above the cwd, made fsspec's defaults (endpoint, region,
    profile for every s3:// URL, ``--lake`` included); None outside a project.

    Raises:
        ManifestError: limnos.lock's settings are not valid (or hold a credential).
    """
    from limnos.tracking.manifest import find_manifest
    from limnos.tracking.settings import apply_storage, read_settings

    manifest = find_manifest(os.getcwd())
    if manifest is None:
        return None
    settings = read_settings(manifest)
    apply_storage(settings)
    return settings


# ------------------------------------------------------------ key=value
_INT = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?")


def parse_value(text: str) -> Any:
    """A command-line value to a typed one.

    ``42`` -> int, ``0.5``/``1e-3`` -> float, ``true``/``false`` -> bool,
    ``2024-01-02T03:04:05Z`` -> datetime (UTC when no offset is given),
    ``{...}``/``[...]`` -> JSON, ``"..."`` -> the quoted text; anything else
    stays text. Numbers with leading zeros (``007``, a zip code) stay text.

    Raises:
        CliError: For text that looks like a datetime or JSON but is not valid.
    """
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _DATETIME.fullmatch(text):
        try:
            value = parse_timestamp(text)
        except ValueError as exc:
            raise CliError(f"{text!r} looks like a datetime but is not one ({exc}); quote it as '\"{text}\"' for text") from None
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if text[:1] in ("{", "[") or (text[:1] == '"' and len(text) > 1 and text.endswith('"')):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise CliError(f"{text!r} starts like JSON but is not valid JSON ({exc.args[0]})") from None
    return text


def parse_pairs(pairs: list[str] | None) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``, typed by :func:`parse_value`; a key given twice keeps its last value.

    Raises:
        CliError: For an item without ``=`` or with an empty key.
    """
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        key = key.strip()
        if not eq or not key:
            raise CliError(f"expected key=value, got {pair!r}")
        out[key] = parse_value(value)
    return out


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["client_kwargs.endpoint_url=http://x", "anon=true"]`` -> nested, typed storage options for fsspec.

    Raises:
        CliError: For an item without ``=``, or a dotted key under a plain value.
    """
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise CliError(f"expected key=value for --option, got {pair!r}")
        *parents, leaf = key.strip().split(".")
        target = out
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise CliError(f"--option {key}: {part} is already a plain value")
        target[leaf] = parse_value(value)
    return out


__all__ = [
    "HELP_ORDER",
    "CliError",
    "Command",
    "FormatOption",
    "Group",
    "JsonFlag",
    "Limit",
    "LinkMode",
    "OutputFormat",
    "Ref",
    "RootGroup",
    "Typer",
    "app",
    "lake_path",
    "open_lake",
    "output_format",
    "parse_options",
    "parse_pairs",
    "parse_value",
    "project_settings",
    "set_verbosity",
    "sub_app",
    "with_verbosity",
]
