"""The ``limnos`` command: the console-script entry point (``limnos.cli.main:main``).

The typer application lives in :mod:`.app`; each command module registers its
commands on it when imported, which this module does, once, for all of them.
Each command parses its arguments, calls one :class:`limnos.Lake` method and
prints the result: data (tables, JSON, bytes) on stdout, messages on stderr.
Any error the library raises on purpose becomes one line, ``error: ...``, and
exit code 1 (see :mod:`.errors`); ``LIMNOS_DEBUG=1`` shows the traceback instead.
"""

from . import checks_cmds, demo, ds_cmds, files_cmds, lineage_cmds, project_cmds, sync_cmds, ui_cmds
from .app import app, parse_pairs, parse_value
from .errors import CliError

#: The modules whose commands make up ``limnos``, for tools that walk them.
COMMAND_MODULES = (files_cmds, lineage_cmds, checks_cmds, sync_cmds, project_cmds, ds_cmds, demo, ui_cmds)


def main() -> None:
    """Run the ``limnos`` command line on ``sys.argv``."""
    app(prog_name="limnos")


__all__ = ["COMMAND_MODULES", "CliError", "app", "main", "parse_pairs", "parse_value"]
