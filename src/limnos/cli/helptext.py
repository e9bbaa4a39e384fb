"""How ``limnos ... --help`` reads: plain text, names in capitals, examples one per line, no word ever cut.

Typer's rich help costs about 0.1 s of imports and drawing, most of the
start-up budget of a command, and shows types the way Python spells them
(``<bool>``, ``<list[str]>``); click's own formatter breaks words at hyphens
(``--no-`` / ``team``). So every command and group of the CLI (see
:mod:`.app`) formats its help here instead:

* the usage line and the ``Arguments`` list name an argument by its metavar or
  its name in capitals (``PATH``, ``[PREFIX]``, ``KEY=VALUE...``);
* an option shows a value placeholder only when it takes a value: its metavar,
  its choices (``{copy|reflink}``) or its name in capitals (``--order-by ORDER_BY``);
* text wraps between words only (never inside one, never at a hyphen);
* the commands list shows each command's whole first sentence;
* an ``epilog`` of ``Example: A  |  B`` becomes an ``Examples:`` section, one
  command per line, never re-wrapped, so each can be copied as it is.
"""

from __future__ import annotations

import enum
import inspect
import re
import textwrap
from collections.abc import Sequence
from typing import Any

from typer import _click
from typer._click.formatting import HelpFormatter as ClickHelpFormatter

#: What separates two examples in an epilog: ``Example: limnos init  |  limnos init DIR``
EXAMPLE_SEPARATOR = "  |  "


def wrap(text: str, width: int, initial: str = "", subsequent: str = "") -> list[str]:
    """Lines of ``text`` at most ``width`` wide where words allow, broken only between words.

    Blank lines separate paragraphs, which are wrapped one by one and stay
    apart; a paragraph whose first line is ``\\b`` is kept line for line
    (click's convention), for examples to copy as they are.
    """
    out: list[str] = []
    for paragraph in re.split(r"\n[ \t]*\n", text.expandtabs()):
        lines = [line for line in paragraph.splitlines() if line.strip()]
        if not lines:
            continue
        if out:
            out.append("")
        if lines[0].strip() == "\b":
            out += [(initial if i == 0 else subsequent) + line.rstrip() for i, line in enumerate(lines[1:])]
        else:
            out += textwrap.wrap(" ".join(paragraph.split()), max(width, 10), initial_indent=initial,
                                 subsequent_indent=subsequent, break_long_words=False, break_on_hyphens=False)
    return out


class HelpFormatter(ClickHelpFormatter):
    """click's help formatter, wrapping only between words (see :func:`wrap`)."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        """``Usage: limnos ls [OPTIONS] [PREFIX]``, continued lines aligned under the arguments."""
        head = f"{'':>{self.current_indent}}{prefix or 'Usage: '}{prog} "
        lines = wrap(args, self.width, initial=head, subsequent=" " * len(head)) or [head.rstrip()]
        self.write("\n".join(lines) + "\n")

    def write_text(self, text: str) -> None:
        """Paragraphs of text at the current indentation."""
        indent = " " * self.current_indent
        self.write("\n".join(wrap(text, self.width, indent, indent)) + "\n")

    def write_dl(self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        """A two-column list (options, commands): a term too wide for the column gets its text on the next line."""
        rows = list(rows)
        if not rows:
            return
        first_col = min(max(len(term) for term, _ in rows), col_max) + col_spacing
        pad = " " * (self.current_indent + first_col)
        for term, text in rows:
            self.write(f"{'':>{self.current_indent}}{term}")
            if not text:
                self.write("\n")
                continue
            lines = wrap(text, max(self.width - first_col - self.current_indent, 20))
            if len(term) <= first_col - col_spacing:
                self.write(" " * (first_col - len(term)))
            else:
                self.write("\n" + pad)
            self.write(("\n" + pad).join(lines) + "\n")


class HelpContext(_click.Context):
    """A click context that formats help with :class:`HelpFormatter`."""

    formatter_class = HelpFormatter


def _choices(param: Any) -> list[str] | None:
    """The values a parameter accepts, when it is a choice (an Enum or a Literal); else None."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or not getattr(descriptor, "is_choice", False):
        return None
    return [str(c.value if isinstance(c, enum.Enum) else c) for c in descriptor.choices or ()]


def _variadic(param: Any) -> bool:
    return bool(getattr(param, "multiple", False)) or getattr(param, "nargs", 1) != 1


def argument_name(param: Any) -> str:
    """An argument as help shows it: its metavar, else its name in capitals; ``...`` when it takes several."""
    name = param.metavar or (param.name or "").upper()
    return name + "..." if _variadic(param) and not name.endswith("...") else name


def value_name(param: Any) -> str:
    """The placeholder after an option that takes a value: its metavar, ``{a|b}`` for choices, else its name in capitals."""
    if param.metavar:
        return str(param.metavar)
    choices = _choices(param)
    if choices:
        return "{" + "|".join(choices) + "}"
    return (param.name or "VALUE").upper()


def _default_text(param: Any) -> str | None:
    """The default worth showing in help, or None (no default, a plain flag's False, an empty list)."""
    show = getattr(param, "show_default", None)
    if isinstance(show, str):
        return show
    if show is False:
        return None
    default = param.default
    if callable(default) or default is None or default == () or default == [] or default == "":
        return None
    if isinstance(default, bool):  # a --x/--no-x pair names the side taken; a lone flag's False goes without saying
        if not param.secondary_opts:
            return None
        side: str = (param.opts if default else param.secondary_opts)[0]
        return side.lstrip("-")
    return str(default.value if isinstance(default, enum.Enum) else default)


def option_record(param: Any) -> tuple[str, str]:
    """``(-m, --meta KEY=VALUE, help [default: x])``: an option's row in the Options list."""
    term = ", ".join(sorted(param.opts, key=lambda o: o.startswith("--")))  # -m, --meta
    if param.secondary_opts:
        term += " / " + ", ".join(param.secondary_opts)
    if not (getattr(param, "is_flag", False) or getattr(param, "count", False)):
        term += " " + value_name(param)
    extra = []
    if param.envvar and getattr(param, "show_envvar", False):
        extra.append(f"env var: {param.envvar if isinstance(param.envvar, str) else ', '.join(param.envvar)}")
    counts = bool(getattr(param, "count", False))  # -v, -vv: no default or range worth a word
    default = None if counts else _default_text(param)
    if default is not None:
        extra.append(f"default: {default}")
    low, high = (None, None) if counts else (getattr(param, "min", None), getattr(param, "max", None))
    if low is not None and high is None:
        extra.append(f"at least {low}")
    elif high is not None:
        extra.append(f"{low if low is not None else '...'} to {high}")
    if param.required:
        extra.append("required")
    text = param.help or ""
    if extra:
        text = f"{text}  [{'; '.join(extra)}]".strip()
    return term, text


def argument_record(param: Any) -> tuple[str, str]:
    """An argument's row in the Arguments list: its name and its help (with a default worth knowing)."""
    text = param.help or ""
    default = _default_text(param)
    if default is not None and not param.required:
        text = f"{text}  [default: {default}]".strip()
    return argument_name(param), text


def examples(epilog: str) -> list[str] | None:
    """The commands of an ``Example: A  |  B`` epilog, as written; None for an epilog of another form."""
    label, colon, rest = inspect.cleandoc(epilog).partition(":")
    if not colon or label.strip() not in ("Example", "Examples"):
        return None
    return [e.strip() for e in rest.split(EXAMPLE_SEPARATOR) if e.strip()]


class HelpMixin:
    """The help layout of every limnos command and group (mixed in before typer's classes)."""

    context_class = HelpContext

    def collect_usage_pieces(self, ctx: _click.Context) -> list[str]:
        """``[OPTIONS] PATH [PREFIX]``: options first, then each argument (optional ones in brackets)."""
        pieces = ["[OPTIONS]"]
        for param in self.get_params(ctx):  # type: ignore[attr-defined]
            if param.param_type_name == "argument":
                name = argument_name(param)
                pieces.append(name if param.required else f"[{name}]")
        if hasattr(self, "subcommand_metavar"):  # a group
            pieces.append(self.subcommand_metavar)
        return pieces

    def format_options(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        """The Arguments and Options lists (and, for a group, its Commands)."""
        params = [p for p in self.get_params(ctx) if not getattr(p, "hidden", False)]  # type: ignore[attr-defined]
        args = [argument_record(p) for p in params if p.param_type_name == "argument"]
        opts = [option_record(p) for p in params if p.param_type_name == "option"]
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
        if hasattr(self, "commands"):
            self.format_command_list(ctx, formatter)

    def format_command_list(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        """A group's commands, each with the whole first sentence of its help."""
        rows = []
        for name in self.list_commands(ctx):  # type: ignore[attr-defined]
            cmd = self.get_command(ctx, name)  # type: ignore[attr-defined]
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def format_epilog(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        """The examples, one per line and never wrapped, so each can be copied whole (see :func:`examples`)."""
        epilog = getattr(self, "epilog", None)
        if not epilog:
            return
        formatter.write_paragraph()
        commands = examples(epilog)
        if commands is None:
            formatter.write_text(inspect.cleandoc(epilog))
            return
        formatter.write_heading("Example" if len(commands) == 1 else "Examples")
        for command in commands:
            formatter.write(f"{'':>{formatter.current_indent + formatter.indent_increment}}{command}\n")


__all__ = [
    "EXAMPLE_SEPARATOR",
    "HelpContext",
    "HelpFormatter",
    "HelpMixin",
    "argument_name",
    "argument_record",
    "examples",
    "option_record",
    "value_name",
    "wrap",
]
