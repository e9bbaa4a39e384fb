"""The ``limnos`` command line: a thin shell over the library (typer + rich).

``main`` is the console-script entry point; ``app`` is the typer application,
for ``typer.testing.CliRunner``. The library never imports this package.
"""

from .main import app, main, parse_pairs, parse_value

__all__ = ["app", "main", "parse_pairs", "parse_value"]
