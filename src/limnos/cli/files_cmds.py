"""CLI commands for files: add, ls, info, get, cat, history, query, and ``meta set/unset``.

Each command parses its arguments, calls one :class:`limnos.Lake` method and
prints the result: data (tables, JSON, bytes) on stdout, messages on stderr.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import re
import shlex
import shutil
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

import limnos
from limnos.errors import FileNotFound, InvalidName
from limnos.names import plural

from . import render
from .app import (
    CliError,
    FormatOption,
    JsonFlag,
    Limit,
    LinkMode,
    OutputFormat,
    Ref,
    app,
    open_lake,
    output_format,
    parse_options,
    parse_pairs,
    parse_value,
    sub_app,
)
from .completion import complete_ref

if TYPE_CHECKING:
    from limnos import Lake

meta_app = sub_app("Set or remove metadata on a file.", "Example: limnos meta set raw/train.csv rows=1000 reviewed=true")
app.add_typer(meta_app, name="meta")

TYPED_VALUES_HELP = ("Typed values: 42 int, 0.5 float, true/false bool, 2024-01-02T03:04:05Z datetime, "
                     "{...} or [...] JSON, '\"42\"' forces text; anything else is text.")


@app.command(epilog="Example: limnos add data/ --name raw --meta project=x  |  "
                    "limnos add https://example.org/iris.csv --name raw/iris.csv")
def add(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="A local file or folder, or a URL (https://..., s3://...).")],
    name: Annotated[str | None, typer.Option(
        help="Name (or prefix, for a folder) in the lake; default: the path (a URL: its last segment).")] = None,
    meta: Annotated[list[str] | None, typer.Option("--meta", "-m", metavar="KEY=VALUE",
                                                      help="Metadata to set, typed (repeatable).")] = None,
    move: Annotated[bool, typer.Option("--move", help="Delete the local files once they are stored.")] = False,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", metavar="KEY=VALUE",
        help="A storage option for a URL's file system (repeatable; dots nest); never recorded.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the added files as JSON.")] = False,
) -> None:
    """Add a file, a whole folder or a URL's file; changed content becomes a new version.

    A URL is downloaded (streamed and hashed on the way) and recorded as the file's source_url metadata.
    """
    metadata = parse_pairs(meta)
    lake = open_lake(ctx)
    result = lake.add(path, name=name, metadata=metadata or None, move=move,
                      storage_options=parse_options(option) if option else None)
    if as_json:
        render.print_json([f.to_dict() for f in result])
        return
    if not result.from_folder:
        f = result.file
        state = "added" if result.new_versions else "unchanged:"
        render.message(f"{state} {f.ref} ({render.size(f.size)}, {render.short_hash(f.hash)})")
    else:
        render.message(f"added {plural(len(result), 'file')} from {path}: {plural(result.new_versions, 'new version')}, "
                       f"{result.unchanged} unchanged")


@app.command("ls", epilog="Example: limnos ls raw/ --json  |  limnos ls --limit 10  |  limnos ls raw/ | cut -f1")
def ls(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Argument(help="Only names under this prefix, such as raw/.")] = "",
    fmt: FormatOption = None,
    limit: Limit = None,
    as_json: JsonFlag = False,
) -> None:
    """List the latest version of every file (under a prefix), by name.

    A table on a terminal; piped, or over 1000 files, one tab-separated line per file (name, version, size,
    created, user, hash, local), printed as the files are read.
    """
    chosen = output_format(fmt, as_json) if fmt is not None or as_json else None
    files = open_lake(ctx).iter_ls(prefix)
    if limit is not None:
        files = itertools.islice(files, limit)
    if chosen is OutputFormat.json:
        render.stream_json({**f.to_dict(), "local": f.is_local} for f in files)
        return
    render.stream_files(files, lambda short: render.show(render.files_table(short, local=True)), local=True,
                        fmt=chosen.value if chosen else None, empty=lambda: render.message(
        "no files" + (f" under {prefix!r}" if prefix else "") + "; add some with 'limnos add PATH'"))


def print_files(files: list[limnos.File], fmt: OutputFormat, meta_keys: list[str] | None = None) -> None:
    """Files as a table (with a column per metadata key), tab-separated lines (name, version, size, created,
    user, hash) or JSON."""
    if fmt is OutputFormat.json:
        render.print_json([f.to_dict() for f in files])
    elif fmt is OutputFormat.tsv:
        render.print_tsv(render.file_cells(f) for f in files)
    else:
        render.show(render.files_table(files, meta_keys=meta_keys or ()))


@app.command(epilog="Example: limnos info raw/train.csv@2")
def info(ctx: typer.Context, ref: Ref, as_json: JsonFlag = False) -> None:
    """Show a file: its fields, metadata, inputs and the step or run that made it."""
    file = open_lake(ctx).get(ref)
    if as_json:
        record = file.step
        data = {**file.to_dict(), "ref": file.ref, "local": file.is_local,
                "inputs": [_brief(f) for f in file.inputs], "removed_inputs": [_brief(f) for f in file.removed_inputs],
                "step": record.to_dict() if record is not None else None,
                "provenance": file.run}
        render.print_json(data)
        return
    render.print_all(render.out_console(), render.info_renderables(file))


def _brief(file: limnos.File) -> dict[str, object]:
    """A file as ``info --json`` lists an input: id, name, version and ref."""
    return {"id": file.id, "name": file.name, "version": file.version, "ref": file.ref}


@app.command(epilog="Example: limnos get raw/train.csv@2 ./train.csv")
def get(
    ctx: typer.Context,
    ref: Ref,
    dest: Annotated[str, typer.Argument(help="Destination file or folder.")] = ".",
    link: Annotated[LinkMode | None, typer.Option(help="How to make the copy (default: the lake's setting).")] = None,
) -> None:
    """Put a read-only working copy of a file on disk; prints its path. Missing folders in DEST are created."""
    lake = open_lake(ctx)
    with _not_a_prefix(lake, ref):
        path = lake.checkout(ref, dest, link=link.value if link else None)
    print(render.printable(path))


@contextlib.contextmanager
def _not_a_prefix(lake: Lake, ref: str) -> Iterator[None]:
    """Turn "no file 'raw/'" into "'raw/' is a prefix of N files" when files live under that name."""
    try:
        yield
    except (FileNotFound, InvalidName):
        prefix = ref.rstrip("/") + "/"
        under = lake.ls(prefix) if "@" not in ref and prefix != "/" else []
        if under:
            raise CliError(f"'{prefix}' is a prefix (a folder) of {plural(len(under), 'file')}, not a file; "
                           f"see them with 'limnos ls {shlex.quote(prefix)}'") from None
        raise


@app.command(epilog="Example: limnos cat raw/train.csv | head")
def cat(ctx: typer.Context, ref: Ref) -> None:
    """Write a file's bytes to stdout."""
    lake = open_lake(ctx)
    with _not_a_prefix(lake, ref):
        file = lake.get(ref)
    file.local_path()  # verifies the whole object first: not one byte of a corrupt object reaches the pipe
    sys.stdout.flush()
    out = sys.stdout.buffer
    with file.open("rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)
    out.flush()


@app.command(epilog="Example: limnos history raw/train.csv --json  |  limnos history raw/train.csv --format tsv")
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A file name.", autocompletion=complete_ref)],
    fmt: FormatOption = None,
    limit: Annotated[int | None, typer.Option("--limit", min=0, metavar="N", help="Only the newest N versions.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List every version of a name, oldest first."""
    files = open_lake(ctx).history(name)
    if limit is not None:
        files = files[len(files) - limit:] if limit else []
    print_files(files, output_format(fmt, as_json))


#: ``key=value`` (one ``=``, a key of name characters): a metadata equality, not query text
_PAIR = re.compile(r"^[^\s=<>!()`'\"]+=(?!=)")


@app.command(epilog="Example: limnos query 'user == \"ana\" and created_at > \"2026-01-01\" and ticket startswith \"abc\"' "
                    "--latest --json  |  limnos query project=x reviewed=true")
def query(
    ctx: typer.Context,
    terms: Annotated[list[str] | None, typer.Argument(
        metavar="QUERY | KEY=VALUE...",
        help="A query in the syntax of 'limnos ds query' (automatic fields: name, version, size, created_at, user, "
             "host, script, git_commit, step), or KEY=VALUE metadata equalities (typed as in 'meta set').")] = None,
    latest: Annotated[bool, typer.Option("--latest", help="Only the latest version of each name.")] = False,
    order_by: Annotated[str | None, typer.Option("--order-by", metavar="FIELD",
                                                 help="Order by this field (then by name, version).")] = None,
    desc: Annotated[bool, typer.Option("--desc", help="With --order-by: largest first.")] = False,
    limit: Limit = None,
    as_of: Annotated[str | None, typer.Option("--as-of", metavar="TIME",
                                              help="The state at this time (2024-05-01T12:00:00Z).")] = None,
    fmt: FormatOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Find files: by a query on their fields and metadata, or by KEY=VALUE equalities.

    Tab-separated lines hold name, version, size, created, user and hash; --json has the metadata too.
    """
    chosen = output_format(fmt, as_json)
    terms = terms or []
    pairs = [t for t in terms if _PAIR.match(t)] if all(_PAIR.match(t) for t in terms) else []
    expr = parse_pairs(pairs) if pairs else " ".join(terms) or None  # a dict: "latest" is a fine metadata key
    result = open_lake(ctx).query(expr, latest=latest)
    if order_by:
        result = result.order_by(order_by, desc=desc)
    if limit is not None:
        result = result.limit(limit)
    if as_of:
        when = parse_value(as_of)
        if not isinstance(when, dt.datetime):
            raise CliError(f"--as-of takes a date and time such as 2024-05-01T12:00:00Z, not {as_of!r}")
        result = result.as_of(when)
    if chosen is OutputFormat.json:
        render.print_json(result.to_dicts())
        return
    files = result.files()
    if not files:
        render.message("no file matches")
        return
    print_files(files, chosen, sorted({k for f in files for k in f.metadata}))


@meta_app.command("set", epilog="Example: limnos meta set raw/train.csv rows=1000 reviewed=true when=2024-01-02T03:04:05Z")
def meta_set(
    ctx: typer.Context,
    ref: Ref,
    pairs: Annotated[list[str], typer.Argument(metavar="KEY=VALUE", help=TYPED_VALUES_HELP)],
) -> None:
    """Set typed metadata on a file."""
    metadata = parse_pairs(pairs)
    file = open_lake(ctx).set_metadata(ref, metadata)
    render.message(f"set {', '.join(metadata)} on {file.ref}")


@meta_app.command("unset", epilog="Example: limnos meta unset raw/train.csv reviewed")
def meta_unset(
    ctx: typer.Context,
    ref: Ref,
    keys: Annotated[list[str], typer.Argument(metavar="KEY", help="Keys to remove.")],
) -> None:
    """Remove metadata keys from a file (their past values stay in its history)."""
    file = open_lake(ctx).unset_metadata(ref, keys)
    render.message(f"removed {', '.join(keys)} from {file.ref}")
