"""CLI commands for datasources: ``limnos ds ...`` and ``limnos datasets``.

A datasource is a typed metadata table over a lake prefix, a folder or a
bucket. Queries are written in the small textual syntax of
:mod:`limnos.datasources.text` (parsed, never evaluated).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from limnos.errors import redact_url
from limnos.names import plural

from . import render
from .app import (
    CliError,
    FormatOption,
    JsonFlag,
    Limit,
    OutputFormat,
    app,
    open_lake,
    output_format,
    parse_options,
    parse_pairs,
    parse_value,
    sub_app,
)
from .completion import complete_datasource

if TYPE_CHECKING:
    from limnos.datasources.source import Datasource

T = TypeVar("T")

ds_app = sub_app("Datasources: typed metadata tables over lake prefixes, folders and buckets.",
                 "Example: limnos ds create birds s3://bucket/birds && limnos ds query birds 'species == \"owl\"'")
app.add_typer(ds_app, name="ds")

QUERY_HELP = ("A query such as: episode > 5 and has_yoda == true. Operators: == != < <= > >=, contains, startswith, "
              "endswith, in [..], is null, is not null; combine with and, or, not and parentheses.")

SourceName = Annotated[str, typer.Argument(metavar="SOURCE", help="The datasource's name.",
                                           autocompletion=complete_datasource)]
Query = Annotated[str | None, typer.Argument(help=QUERY_HELP)]


def _datasource(ctx: typer.Context, name: str, query: str | None = None, as_of: str | None = None) -> Datasource:
    """The datasource ``name``, narrowed to ``query`` and seen ``as_of`` a time when given."""
    from limnos.datasources.text import parse

    ds = open_lake(ctx).datasource(name)
    if query:
        ds = ds[parse(query)]
    if as_of:
        when = parse_value(as_of)
        if not isinstance(when, dt.datetime):
            raise CliError(f"--as-of takes a date and time such as 2024-05-01T12:00:00Z, not {as_of!r}")
        ds = ds.as_of(when)
    return ds


def _quietly(fn: Callable[[], T]) -> T:
    """Run ``fn``; a partial-results warning becomes one ``warning:`` line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    for w in caught:
        render.warning_line(str(w.message))
    return result


def _source_row(ds: Datasource) -> dict[str, Any]:
    """A datasource as ``ds list --json`` prints it."""
    info = ds.info
    return {"name": ds.name, "kind": ds.kind, "root": redact_url(ds.root),
            "datapoints": ds.count(), "fields": ds.fields,
            "scanned_at": info.scanned_at.isoformat() if info.scanned_at else None,
            "created_at": info.created_at.isoformat()}


@ds_app.command("create", epilog="Example: limnos ds create birds s3://bucket/birds "
                                 "-o client_kwargs.endpoint_url=http://minio:9000")
def ds_create(
    ctx: typer.Context,
    name: SourceName,
    root: Annotated[str, typer.Argument(help="A lake prefix (raw/images), a folder (/data/imgs, ./imgs) or a URL (s3://...).")],
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", metavar="KEY=VALUE",
        help="A storage option for fsspec (repeatable; dots nest); kept on this machine.")] = None,
    scan: Annotated[bool, typer.Option(
        "--scan/--no-scan", help="Scan the root now (default) or later with 'limnos ds scan'.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the datasource as JSON.")] = False,
) -> None:
    """Create a datasource over a lake prefix, a folder or a bucket, and scan it."""
    lake = open_lake(ctx)
    if any(d.name == name for d in lake.datasources()):
        raise CliError(f"datasource {name!r} exists; scan it with 'limnos ds scan {name}'")
    ds = lake.datasource(name, root, storage_options=parse_options(option) if option else None, scan=scan)
    if as_json:
        render.print_json(_source_row(ds))
        return
    render.message(f"created datasource {name} over {ds.root or '(the whole lake)'}: {plural(ds.count(), 'datapoint')}")


@ds_app.command("list", epilog="Example: limnos ds list --json")
def ds_list(ctx: typer.Context, fmt: FormatOption = None, limit: Limit = None, as_json: JsonFlag = False) -> None:
    """List datasources with their roots, sizes and fields.

    Tab-separated lines hold name, kind, root, datapoints, fields (as JSON) and scanned time.
    """
    chosen = output_format(fmt, as_json)
    rows = [_source_row(ds) for ds in open_lake(ctx).datasources()][:limit]
    if chosen is OutputFormat.json:
        render.print_json(rows)
        return
    if not rows:
        render.message("no datasources; create one with 'limnos ds create NAME ROOT'")
        return
    if chosen is OutputFormat.tsv:
        render.print_tsv([r["name"], r["kind"], r["root"], r["datapoints"], r["fields"], r["scanned_at"]] for r in rows)
        return
    render.show(render.datasources_table(rows))


@ds_app.command("scan", epilog="Example: limnos ds scan birds --json")
def ds_scan(
    ctx: typer.Context,
    name: SourceName,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scan report as JSON.")] = False,
) -> None:
    """Scan a datasource's root again: new files are added, changed ones followed, vanished ones removed."""
    report = open_lake(ctx).datasource(name).scan()
    assert report is not None  # only a background scan returns None
    if as_json:
        render.print_json(report.to_dict())
        return
    render.message(f"scanned {name}: {report.added} added, {report.changed} changed, {report.removed} removed, "
                   f"{report.unchanged} unchanged in {report.seconds:.2f} s")
    for line in report.skipped[:20]:
        render.warning_line(f"skipped {line}")


@ds_app.command("query", epilog="Example: limnos ds query birds 'episode > 5 and has_yoda == true' "
                                "--select episode --limit 20 --json")
def ds_query(
    ctx: typer.Context,
    name: SourceName,
    query: Query = None,
    select: Annotated[str | None, typer.Option(metavar="FIELDS", help="Comma-separated fields to show (default: all).")] = None,
    order_by: Annotated[str | None, typer.Option("--order-by", metavar="FIELD",
                                                 help="Order by this field (then by path).")] = None,
    desc: Annotated[bool, typer.Option("--desc", help="With --order-by: largest first.")] = False,
    limit: Limit = None,
    as_of: Annotated[str | None, typer.Option("--as-of", metavar="TIME",
                                              help="The state at this time (2024-05-01T12:00:00Z).")] = None,
    count: Annotated[bool, typer.Option("--count", help="Print only how many datapoints match.")] = False,
    fmt: FormatOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the datapoints as JSON (the same as --format json).")] = False,
) -> None:
    """Query a datasource's metadata table.

    Tab-separated lines start with a header line of the field names (fields differ between datasources).
    """
    chosen = output_format(fmt, as_json)
    as_json = chosen is OutputFormat.json
    ds = _datasource(ctx, name, query, as_of)
    if select:
        ds = ds.select(*[f.strip() for f in select.split(",") if f.strip()])
    if order_by:
        ds = ds.order_by(order_by, desc=desc)
    if limit is not None:
        ds = ds.limit(limit)
    if count:
        n = ds.count()
        if as_json:
            render.print_json({"count": n})
        else:
            print(n)
        return
    rows = _quietly(ds.all).to_dicts()
    if as_json:
        render.print_json(rows)
        return
    if not rows:
        render.message("no datapoint matches")
        return
    if chosen is OutputFormat.tsv:
        render.print_tsv([list(rows[0]), *([row[c] for c in rows[0]] for row in rows)])
        return
    render.show(render.datapoints_table(rows))
    render.message(plural(len(rows), "datapoint"), "dim")


@ds_app.command("meta", epilog="Example: limnos ds meta birds images/005.jpg episode=5 has_yoda=true")
def ds_meta(
    ctx: typer.Context,
    name: SourceName,
    path: Annotated[str, typer.Argument(help="A datapoint's path, relative to the datasource's root.")],
    pairs: Annotated[list[str], typer.Argument(metavar="KEY=VALUE", help="Typed values, as in 'limnos meta set'.")],
) -> None:
    """Set fields on one datapoint."""
    metadata = parse_pairs(pairs)
    ds = open_lake(ctx).datasource(name)
    with ds.metadata_context() as meta:
        meta.update_metadata(path, metadata)
    render.message(f"set {', '.join(metadata)} on {path}")


@ds_app.command("download", epilog="Example: limnos ds download birds 'label == \"owl\"' --target ./owls")
def ds_download(
    ctx: typer.Context,
    name: SourceName,
    query: Query = None,
    target: Annotated[str | None, typer.Option(metavar="DIR",
                                               help="Folder to download into (default: limnos' data folder).")] = None,
    source_prefix: Annotated[bool, typer.Option("--source-prefix/--no-source-prefix",
                                                help="Keep the root's own folder in the paths.")] = True,
    redownload: Annotated[bool, typer.Option("--redownload", help="Download files that are already there too.")] = False,
    jobs: Annotated[int | None, typer.Option(metavar="N", help="Downloads in flight.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Download the files of a datasource (or of the datapoints a query matches)."""
    result = _quietly(_datasource(ctx, name, query).all)
    report = result.download_files(target, keep_source_prefix=source_prefix, redownload=redownload, jobs=jobs)
    if as_json:
        render.print_json(report.to_dict())
        return
    render.message(f"downloaded {plural(report.downloaded, 'file')} ({render.size(report.bytes)}), "
                   f"{report.skipped} already there, "
                   f"into {report.target_dir}")


@ds_app.command("save-dataset", epilog="Example: limnos ds save-dataset birds owls 'label == \"owl\"' --pin")
def ds_save_dataset(
    ctx: typer.Context,
    name: SourceName,
    dataset: Annotated[str, typer.Argument(help="A name for the dataset.")],
    query: Query = None,
    pin: Annotated[bool, typer.Option("--pin", help="Pin it to now: later changes to the metadata do not show.")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", metavar="TIME", help="Pin it to this time instead.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a dataset of that name.")] = False,
) -> None:
    """Save a query on a datasource as a named dataset ('limnos datasets' lists them)."""
    saved = _datasource(ctx, name, query, as_of).save_dataset(dataset, pin=pin, overwrite=overwrite)
    pinned = f", pinned to {saved.as_of.isoformat()}" if saved.as_of else ""
    render.message(f"saved dataset {dataset}: {saved.to_dict()['query']} on {name}{pinned}")


@ds_app.command("delete", epilog="Example: limnos ds delete birds --yes")
def ds_delete(
    ctx: typer.Context,
    name: SourceName,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Really delete.")] = False,
) -> None:
    """Delete a datasource and its saved datasets (its files stay where they are)."""
    if not yes:
        raise CliError(f"this deletes datasource {name!r} and its datasets; add --yes to confirm")
    open_lake(ctx).datasource(name).delete_source()
    render.message(f"deleted datasource {name}")


@app.command("datasets", epilog="Example: limnos datasets --json")
def datasets(ctx: typer.Context, fmt: FormatOption = None, limit: Limit = None, as_json: JsonFlag = False) -> None:
    """List saved datasets: their datasource, query and pinned time.

    Tab-separated lines hold name, datasource, query and pinned time (- when not pinned).
    """
    chosen = output_format(fmt, as_json)
    rows = [d.to_dict() for d in open_lake(ctx).datasets()][:limit]
    if chosen is OutputFormat.json:
        render.print_json(rows)
        return
    if not rows:
        render.message("no datasets; save one with 'limnos ds save-dataset SOURCE NAME QUERY'")
        return
    if chosen is OutputFormat.tsv:
        render.print_tsv([r["name"], r["datasource"], r["query"], r["as_of"]] for r in rows)
        return
    render.show(render.datasets_table(rows))
