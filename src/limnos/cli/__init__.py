"""The ``limnos`` command line: a thin shell over the library (typer + rich).

``main`` is the console-script entry point; ``app`` is the typer application,
for ``typer.testing.CliRunner``. The library never imports this package.

Layout: :mod:`.app` (the typer app, shared options and parsers), :mod:`.errors`
(how failures are reported), :mod:`.render` (all drawing), one module per
command group (``files_cmds``, ``lineage_cmds``, ``checks_cmds``, ``sync_cmds``,
``project_cmds``, ``ds_cmds``, ``demo``) and :mod:`.main`, which loads them.
"""

from .main import app, main, parse_pairs, parse_value

__all__ = ["app", "main", "parse_pairs", "parse_value"]
