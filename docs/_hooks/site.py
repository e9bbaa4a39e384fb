"""mkdocs hooks for the limnos site (listed under ``hooks:`` in mkdocs.yml).

* ``extra.optional_pages``: nav entries for pages that other work adds; while
  a page does not exist its entry is dropped, so ``mkdocs build --strict``
  passes before and after it lands. Any other missing page still fails.
* ``<!-- cli-reference -->`` on a page is replaced by the reference of every
  ``limnos`` command, generated from the typer app, so it never drifts from
  ``limnos --help``.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

log = logging.getLogger("mkdocs.hooks.limnos")
CLI_MARKER = "<!-- cli-reference -->"


def prune(nav: Any, missing: set[str]) -> Any:
    """The nav without entries whose page is in ``missing`` (sections left empty go too)."""
    if isinstance(nav, list):
        kept = [prune(item, missing) for item in nav]
        return [item for item in kept if item not in (None, {}, [])]
    if isinstance(nav, dict):
        pruned = {title: prune(value, missing) for title, value in nav.items()}
        return {title: value for title, value in pruned.items() if value not in (None, {}, [])}
    return None if nav in missing else nav


def on_config(config: Any, **kwargs: Any) -> Any:
    """Drop the optional pages that are not there yet."""
    optional = set(config["extra"].get("optional_pages", []))
    missing = {page for page in optional if not os.path.exists(os.path.join(config["docs_dir"], page))}
    if missing:
        log.info("optional pages not present yet, left out of the nav: %s", ", ".join(sorted(missing)))
        config["nav"] = prune(config["nav"], missing)
    return config


def cli_reference() -> str:
    """Markdown for every command of ``limnos``, from the typer app (headings start at level 2)."""
    import typer.main
    from typer.cli import get_docs_for_click

    from limnos.cli.main import app

    command = typer.main.get_command(app)
    ctx = typer.Context(command, info_name="limnos")
    # A command list shows each command's whole first help line, not click's 45 characters and "...".
    command_class = next(k for k in type(command).__mro__ if "get_short_help_str" in vars(k))  # click's Command
    short_help = vars(command_class)["get_short_help_str"]
    setattr(command_class, "get_short_help_str", lambda self, limit=45: short_help(self, limit=200))  # noqa: B010
    try:
        text = get_docs_for_click(obj=command, ctx=ctx, name="limnos", indent=1)
    finally:
        setattr(command_class, "get_short_help_str", short_help)  # noqa: B010
    return re.sub(r"^Example: (.+)$", examples, text, flags=re.M)


def examples(match: re.Match[str]) -> str:
    """A help text's ``Example: a  |  b`` line as a console block, one command a line."""
    commands = [part.strip() for part in match.group(1).split("  |  ")]
    return "**Example**:\n\n```console\n" + "\n".join(f"$ {c}" for c in commands) + "\n```"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Fill in the generated CLI reference where a page asks for it."""
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    return markdown
