"""Drawing for the CLI: every table, tree, box and report the commands print.

Commands call these functions and never build rich tables themselves; the
functions only format what the library returns and decide nothing about the
lake. By topic:

* :mod:`.console`: consoles, ``message``/``warning``/``error`` lines, JSON, short text formats;
* :mod:`.tables`: listings (files, step executions, datasources, datapoints, datasets, remotes);
* :mod:`.info`: ``limnos info`` (a file's fields, metadata, inputs, step or run);
* :mod:`.lines`: listings that stream, one line per item (``ls`` of any length, JSON arrays);
* :mod:`.lineage`: ``limnos lineage`` boxes and trees;
* :mod:`.reports`: fsck/gc reports, ``status`` of a folder, of step outputs and of a project, push/pull reports.

Each name loads its module on first use (PEP 562): rich costs tens of
milliseconds to import, and ``limnos --help`` or ``limnos ls`` piped to
another program draw nothing with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Which module of this package defines each public name.
_WHERE = {
    **dict.fromkeys((
        "PIPE_WIDTH", "argv_text", "count", "dumps", "duration", "err_console", "error_line", "message", "out_console",
        "params_text", "print_all", "print_json", "printable", "set_verbosity", "short_hash", "show", "size", "type_name",
        "value_text", "verbosity", "warning_line", "when"), "console"),
    **dict.fromkeys(("info_renderables", "kv_table", "run_fields", "step_panel"), "info"),
    **dict.fromkeys(("file_cells", "print_tsv", "step_cells", "stream_files", "stream_json", "tsv_cell"), "lines"),
    **dict.fromkeys(("MAX_BOX_ITEMS", "lineage_renderables", "lineage_tree", "step_box"), "lineage"),
    **dict.fromkeys((
        "project_pull_report", "project_status_hints", "project_status_renderable", "report_renderable",
        "stale_renderable", "status_renderable", "transfer_report"), "reports"),
    **dict.fromkeys((
        "datapoints_table", "datasets_table", "datasources_table", "files_table", "remotes_lines", "steps_table"),
        "tables"),
}

if TYPE_CHECKING:
    from .console import (
        PIPE_WIDTH,
        argv_text,
        count,
        dumps,
        duration,
        err_console,
        error_line,
        message,
        out_console,
        params_text,
        print_all,
        print_json,
        printable,
        set_verbosity,
        short_hash,
        show,
        size,
        type_name,
        value_text,
        verbosity,
        warning_line,
        when,
    )
    from .info import info_renderables, kv_table, run_fields, step_panel
    from .lineage import MAX_BOX_ITEMS, lineage_renderables, lineage_tree, step_box
    from .lines import file_cells, print_tsv, step_cells, stream_files, stream_json, tsv_cell
    from .reports import (
        project_pull_report,
        project_status_hints,
        project_status_renderable,
        report_renderable,
        stale_renderable,
        status_renderable,
        transfer_report,
    )
    from .tables import datapoints_table, datasets_table, datasources_table, files_table, remotes_lines, steps_table


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, lazy ones included."""
    return sorted(__all__)


__all__ = [
    "MAX_BOX_ITEMS",
    "PIPE_WIDTH",
    "argv_text",
    "count",
    "datapoints_table",
    "datasets_table",
    "datasources_table",
    "dumps",
    "duration",
    "err_console",
    "error_line",
    "file_cells",
    "files_table",
    "info_renderables",
    "kv_table",
    "lineage_renderables",
    "lineage_tree",
    "message",
    "out_console",
    "params_text",
    "print_all",
    "print_json",
    "print_tsv",
    "printable",
    "project_pull_report",
    "project_status_hints",
    "project_status_renderable",
    "remotes_lines",
    "report_renderable",
    "run_fields",
    "set_verbosity",
    "short_hash",
    "show",
    "size",
    "stale_renderable",
    "status_renderable",
    "step_box",
    "step_cells",
    "step_panel",
    "steps_table",
    "stream_files",
    "stream_json",
    "transfer_report",
    "tsv_cell",
    "type_name",
    "value_text",
    "verbosity",
    "warning_line",
    "when",
]
