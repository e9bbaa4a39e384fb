"""Validation of records rows: every field, before it reaches the catalog or the store.

A records file is untrusted input: it may come from a remote anyone with
write access could have crafted, or from a disk that damaged it. Before any
row of it is applied, :func:`check_rows` (run by ``Commit.from_jsonl``)
checks each field of each row: names through the same
:func:`~limnos.names.validate_name` as local names (so they are normalised
to NFC here too), hashes as exactly 64 lowercase hex digits, sizes, versions
and positions as ints in the range of their column, ids as ULIDs, times as
ISO timestamps, strings as text a database takes (no NUL, no lone surrogate,
within the column's length), JSON as finite values of bounded depth. The
rows come out in the form the catalog inserts: optional fields present
(``None`` when absent), unknown fields of the core tables refused.

A commit can also be well formed and still not apply: it may name a file,
run, step or datasource that no commit made, or give a metadata key another
type than the lake holds. :func:`unresolved` finds those against the
catalog and the other commits of the same import, so that one such file is
refused alone instead of failing the whole transaction.

Every refusal is a :class:`~limnos.errors.RecordsInvalid` whose message
names the row and the field.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import InvalidName, LimnosError, RecordsInvalid
from ..names import is_file_id, ulid_seconds, validate_name
from ..store.hashing import is_hash
from . import schema as t
from . import values as metavalues
from .datasources import registered_fields
from .engine import chunks

if TYPE_CHECKING:
    from .catalog import Catalog
    from .records import Commit

INT32 = 2**31
INT64 = 2**63
MAX_JSON_DEPTH = 64
#: commit ids carry their time: none before 2000 (an all-zero id skipped the roll-forward grace), none
#: after 9999 (no datetime can hold it). A clock that runs ahead is not refused: its commits are real.
EARLIEST_ID = 946_684_800.0
LATEST_ID = 253_402_300_799.0
METADATA_TYPES = frozenset({"int", "float", "bool", "str", "datetime", "json", "blob"})
#: datetime metadata is microseconds from 1970 in v_int; these bound years 1 to 9999, which Python can read back
_MIN_MICROS = -62_135_596_800_000_000
_MAX_MICROS = 253_402_300_799_999_999
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_DATASOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_KIND = re.compile(r"^[a-z][a-z_]{0,15}$")


class _Bad(Exception):
    """A field is wrong; the message says how (the caller adds which row and field)."""


# ----------------------------------------------------------------- fields
Check = Callable[[Any], Any]


def _text(limit: int | None = None, control: bool = True) -> Check:
    """A str a database stores as given: no NUL, no lone surrogate, at most ``limit`` characters."""

    def check(value: Any) -> Any:
        if type(value) is not str:
            raise _Bad(f"must be a string, not {type(value).__name__}")
        if "\x00" in value:
            raise _Bad("holds a NUL character")
        if not control and _CONTROL.search(value):
            raise _Bad("holds a control character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Bad("is not valid Unicode (a lone surrogate)") from None
        if limit is not None and len(value) > limit:
            raise _Bad(f"is longer than {limit} characters")
        return value

    return check


def _ulid(value: Any) -> Any:
    if type(value) is not str or not is_file_id(value):
        raise _Bad(f"is not an id (26 Crockford base32 characters): {_short(value)}")
    return value


def _commit_id(value: Any) -> Any:
    _ulid(value)
    made = ulid_seconds(value)
    if not EARLIEST_ID <= made <= LATEST_ID:
        when = dt.datetime.fromtimestamp(min(made, LATEST_ID), dt.timezone.utc).year
        raise _Bad(f"is a commit id dated {'after ' if made > LATEST_ID else ''}{when}, which no limnos writes")
    return value


def _digest(value: Any) -> Any:
    if not is_hash(value):
        raise _Bad(f"is not an object hash (64 lowercase hex digits): {_short(value)}")
    return value


def _integer(low: int, high: int) -> Check:
    """An int (not a bool) with ``low <= value < high``."""

    def check(value: Any) -> Any:
        if type(value) is not int:
            raise _Bad(f"must be an integer, not {type(value).__name__}")
        if not low <= value < high:
            raise _Bad(f"is {_short(value)}, outside {low} to {high - 1}")
        return value

    return check


def _boolean(value: Any) -> Any:
    if type(value) is not bool:
        raise _Bad(f"must be true or false, not {type(value).__name__}")
    return value


def _number(value: Any) -> Any:
    if type(value) not in (int, float) or (type(value) is float and not math.isfinite(value)):
        raise _Bad(f"must be a finite number, not {_short(value)}")
    if type(value) is int and not -INT64 <= value < INT64:
        raise _Bad("is out of range")
    return value


def _time(value: Any) -> Any:
    if type(value) is not str or len(value) > 64:
        raise _Bad(f"must be an ISO timestamp string, not {_short(value)}")
    try:
        metavalues.parse_timestamp(value).astimezone(dt.timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise _Bad(f"is not an ISO timestamp: {_short(value)}") from None
    return value


def _json(value: Any) -> Any:
    _json_walk(value, 0)
    return value


def _json_walk(value: Any, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise _Bad(f"nests deeper than {MAX_JSON_DEPTH} levels")
    if value is None or type(value) in (bool, int):
        return
    if type(value) is float:
        if not math.isfinite(value):
            raise _Bad("holds NaN or infinity, which JSON cannot store")
        return
    if type(value) is str:
        _text()(value)
        return
    if type(value) is list:
        for item in value:
            _json_walk(item, depth + 1)
        return
    if type(value) is dict:
        for key, item in value.items():
            _text()(key)
            _json_walk(item, depth + 1)
        return
    raise _Bad(f"holds a {type(value).__name__}")


def _json_text(value: Any) -> Any:
    """A str holding JSON (output kinds, JSON metadata): parsed now so that reading it back never fails."""
    import json

    _text()(value)
    try:
        _json(json.loads(value))
    except (ValueError, RecursionError):
        raise _Bad("is not JSON text") from None
    return value


def _name(value: Any) -> Any:
    try:
        return validate_name(value)
    except InvalidName as exc:
        raise _Bad(str(exc)) from None


def _relpath(value: Any) -> Any:
    """A path relative to a datasource's root: no absolute path, no ``..``, no control character."""
    _text(4096, control=False)(value)
    parts = value.replace("\\", "/").split("/")
    if not value or value.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", value):
        raise _Bad(f"is not a relative path inside its root: {_short(value)}")
    return value


def _kind(value: Any) -> Any:
    if type(value) is not str or not _KIND.match(value):
        raise _Bad(f"is not a kind (a lowercase word of at most 16 letters): {_short(value)}")
    return value


def _one_of(*allowed: str) -> Check:
    def check(value: Any) -> Any:
        if value not in allowed:
            raise _Bad(f"is {_short(value)}, not one of {', '.join(allowed)}")
        return value

    return check


def _datasource_name(value: Any) -> Any:
    if type(value) is not str or not _DATASOURCE_NAME.match(value):
        raise _Bad(f"is not a datasource or dataset name: {_short(value)}")
    return value


def _metadata_key(value: Any) -> Any:
    try:
        return metavalues.validate_key(value)
    except LimnosError as exc:
        raise _Bad(str(exc)) from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _nullable(check: Check) -> Check:
    def maybe(value: Any) -> Any:
        return None if value is None else check(value)

    return maybe


def _column_text(table: sa.Table, column: str) -> Check:
    """Text within the length of ``table.column`` (a VARCHAR(n) that PostgreSQL enforces)."""
    length = getattr(table.c[column].type, "length", None)
    return _text(length)


# ------------------------------------------------------------------ rows
#: row type -> field -> (required, check). A field not required defaults to None.
Spec = dict[str, tuple[bool, Check]]
REQ, OPT = True, False  # required, optional


def _specs() -> dict[str, Spec]:
    text = _text()
    ulid, opt_ulid = _ulid, _nullable(_ulid)
    run: Spec = {c.name: (OPT, _nullable(_column_text(t.runs, c.name))) for c in t.runs.columns}
    run.update({"id": (REQ, ulid), "started_at": (REQ, _time), "argv": (OPT, _nullable(_argv)),
                "git_dirty": (OPT, _nullable(_boolean)), "packages": (OPT, _nullable(_json)), "config": (OPT, _nullable(_json))})
    return {
        "run": run,
        "file": {"id": (REQ, ulid), "name": (REQ, _name), "version": (REQ, _integer(1, INT32)), "hash": (OPT, _nullable(_digest)),
                 "size": (REQ, _integer(0, INT64)), "run_id": (OPT, opt_ulid), "kind": (OPT, _nullable(_kind)),
                 "uri": (OPT, _nullable(_text(None, control=False)))},
        "input": {"file_id": (REQ, ulid), "input_id": (REQ, ulid), "position": (REQ, _integer(0, INT32))},
        "meta": {"file_id": (REQ, ulid), "key": (REQ, _metadata_key), "vtype": (REQ, _column_text(t.metadata_log, "type")),
                 "v_int": (OPT, _nullable(_integer(-INT64, INT64))), "v_float": (OPT, _nullable(_number)),
                 "v_str": (OPT, _nullable(text)), "deleted": (OPT, _nullable(_boolean))},
        "tombstone": {"file_id": (REQ, ulid), "deleted_at": (REQ, _time)},
        "lock": {"file_id": (REQ, ulid), "locked_at": (REQ, _time)},
        "unlock": {"file_id": (REQ, ulid)},
        "step": {"id": (REQ, ulid), "key": (REQ, _column_text(t.steps, "key")), "function": (REQ, text),
                 "module": (OPT, _nullable(text)), "code_hash": (OPT, _nullable(_column_text(t.steps, "code_hash"))),
                 "version": (OPT, _nullable(text)), "source_file": (OPT, _nullable(text)),
                 "source_line": (OPT, _nullable(_integer(-INT32, INT32))),
                 "git_commit": (OPT, _nullable(_column_text(t.steps, "git_commit"))), "git_remote": (OPT, _nullable(text)),
                 "permalink": (OPT, _nullable(text)), "params": (OPT, _nullable(_json)), "inputs": (OPT, _nullable(_step_inputs)),
                 "user": (OPT, _nullable(text)), "host": (OPT, _nullable(text)),
                 "limnos_version": (OPT, _nullable(_column_text(t.steps, "limnos_version"))), "started_at": (REQ, _time),
                 "ended_at": (OPT, _nullable(_time)), "duration": (OPT, _nullable(_number)),
                 "status": (REQ, _column_text(t.steps, "status")), "error": (OPT, _nullable(text)),
                 "output_kind": (OPT, _nullable(_json_text)), "run_id": (OPT, opt_ulid)},
        "step_output": {"step_id": (REQ, ulid), "position": (REQ, _integer(0, INT32)), "file_id": (REQ, ulid),
                        "label": (OPT, _nullable(text))},
        "datasource": {"id": (REQ, ulid), "name": (REQ, _datasource_name), "root": (REQ, _text(None, control=False)),
                       "kind": (REQ, _one_of("lake", "external"))},
        "datapoint": {"id": (REQ, ulid), "datasource_id": (REQ, ulid), "path": (REQ, _relpath), "file_id": (REQ, ulid),
                      "fingerprint": (OPT, _nullable(text))},
        "datapoint_end": {"id": (REQ, ulid)},
        "datasource_scan": {"datasource_id": (REQ, ulid)},
        "datasource_delete": {"datasource_id": (REQ, ulid)},
        "datasource_field": {"datasource_id": (REQ, ulid), "key": (REQ, _metadata_key),
                             "vtype": (OPT, _nullable(_one_of(*sorted(METADATA_TYPES))))},
        "ds_value": {"datasource_id": (REQ, ulid), "file_id": (REQ, ulid), "key": (REQ, _metadata_key),
                     "vtype": (REQ, _column_text(t.ds_values_log, "type")),
                     "v_int": (OPT, _nullable(_integer(-INT64, INT64))), "v_float": (OPT, _nullable(_number)),
                     "v_str": (OPT, _nullable(text)), "deleted": (OPT, _nullable(_boolean))},
        "dataset": {"name": (REQ, _datasource_name), "datasource_id": (REQ, ulid), "query": (REQ, _query),
                    "as_of": (OPT, _nullable(_time))},
        "dataset_delete": {"name": (REQ, _datasource_name)},
    }


def _argv(value: Any) -> Any:
    if type(value) is not list:
        raise _Bad(f"must be a list of strings, not {type(value).__name__}")
    _json(value)
    return value


def _step_inputs(value: Any) -> Any:
    """A step's inputs: a list of {id, name, version, hash, param} (``limnos info`` reads each field)."""
    if type(value) is not list:
        raise _Bad("must be a list")
    for item in value:
        if type(item) is not dict:
            raise _Bad("must be a list of objects")
        _ulid(item.get("id"))
        _text()(item.get("name"))
        _integer(1, INT32)(item.get("version"))
        _nullable(_digest)(item.get("hash"))
        _nullable(_text())(item.get("param"))
    return _json(value)


def _query(value: Any) -> Any:
    if type(value) is not dict:
        raise _Bad("must be a JSON object")
    return _json(value)


SPECS = _specs()
#: the core rows whose every field goes into a table row as it is: unknown fields are refused
STRICT = frozenset({"run", "file", "input", "meta"})


def _check_fields(kind: str, row: dict[str, Any], spec: Spec) -> None:
    for key, (required, check) in spec.items():
        if key not in row or row[key] is None:
            if required:
                raise _Bad(f"has no {key!r}")
            row[key] = None
            continue
        try:
            row[key] = check(row[key])
        except _Bad as bad:
            raise _Bad(f"field {key!r} {bad}") from None
    if kind in STRICT:
        unknown = sorted(set(row) - set(spec) - {"type"})
        if unknown:
            raise _Bad(f"has fields no limnos writes: {', '.join(map(repr, unknown[:5]))}")


def _check_file(row: dict[str, Any]) -> None:
    if row["kind"] is None:
        row["kind"] = "object"
    if row["kind"] == "object" and row["hash"] is None:
        raise _Bad("is an object without a hash")


def _check_meta(row: dict[str, Any]) -> None:
    """The value columns agree with the type, so reading the value back can never fail."""
    vtype, deleted = row["vtype"], bool(row["deleted"])
    row["deleted"] = deleted
    if deleted:
        return
    if vtype not in METADATA_TYPES:
        raise _Bad(f"field 'vtype' is {_short(vtype)}, not one of {', '.join(sorted(METADATA_TYPES))}")
    column = metavalues.column_for(vtype)
    others = [c for c in ("v_int", "v_float", "v_str") if c != column and row[c] is not None]
    if row[column] is None or others:
        raise _Bad(f"a {vtype} value must be in {column} alone")
    value = row[column]
    if vtype == "bool" and value not in (0, 1):
        raise _Bad("field 'v_int' of a bool is not 0 or 1")
    if vtype == "datetime" and not _MIN_MICROS <= value <= _MAX_MICROS:
        raise _Bad("field 'v_int' is not a datetime between the years 1 and 9999")
    if vtype == "json":
        try:
            _json_text(value)
        except _Bad as bad:
            raise _Bad(f"field 'v_str' {bad}") from None
    if vtype == "blob" and not is_hash(value):
        raise _Bad(f"field 'v_str' of a blob is not an object hash: {_short(value)}")


def _check_header(head: Any, max_format: int) -> None:
    if type(head) is not dict or head.get("type") != "commit":
        raise _Bad("the first line is not the commit header")
    fmt = head.get("format", 1)
    if type(fmt) is not int or fmt < 1:
        raise _Bad(f"the header's 'format' is {_short(fmt)}, not a format number")
    if fmt > max_format:
        raise _Bad(f"it has records format {fmt}, newer than this limnos reads; upgrade limnos")
    for key, check in (("id", _commit_id), ("created_at", _time), ("kind", _column_text(t.commits, "kind"))):
        if head.get(key) is None:
            raise _Bad(f"the header has no {key!r}")
        try:
            check(head[key])
        except _Bad as bad:
            raise _Bad(f"the header's {key!r} {bad}") from None


def check_rows(rows: list[Any], max_format: int) -> None:
    """Check every field of the rows of one records file (the header first), in place.

    ``max_format`` is the newest records format this limnos reads: a newer
    file is refused with a message to upgrade.

    Names are normalised to NFC and optional fields filled with None, so the
    rows come out as the catalog inserts them.

    Raises:
        RecordsInvalid: a row or field is wrong; the message says which.
    """
    if not rows:
        raise RecordsInvalid("the records file is empty")
    head = rows[0]
    commit_id = head.get("id") if type(head) is dict and type(head.get("id")) is str else None
    try:
        _check_header(head, max_format)
    except _Bad as bad:
        raise RecordsInvalid(str(bad), commit_id=commit_id) from None
    runs = 0
    file_ids: set[str] = set()
    for number, row in enumerate(rows[1:], start=2):
        kind = row.get("type") if type(row) is dict else None
        try:
            if type(row) is not dict:
                raise _Bad(f"is a {type(row).__name__}, not an object")
            if type(kind) is not str or not kind or len(kind) > 32:
                raise _Bad("has no 'type'")
            spec = SPECS.get(kind)
            if kind == "commit":
                raise _Bad("is a second commit header")
            if spec is None:
                continue  # a row type of a newer minor format: the catalog skips it
            _check_fields(kind, row, spec)
            if kind == "file":
                _check_file(row)
                if row["id"] in file_ids:
                    raise _Bad(f"repeats file id {row['id']}")
                file_ids.add(row["id"])
            elif kind in ("meta", "ds_value"):
                _check_meta(row)
            elif kind == "run":
                runs += 1
                if runs > 1:
                    raise _Bad("is a second run")
        except _Bad as bad:
            label = kind if kind in SPECS or kind == "commit" else "?" if kind is None else _short(kind)  # escaped
            raise RecordsInvalid(f"line {number} ({label}): {bad}", commit_id=commit_id) from None


# ------------------------------------------------------------- references
def _defined(commit: Commit) -> dict[str, set[str]]:
    """Ids a commit brings into the catalog, by table."""
    return {
        "files": {f["id"] for f in commit.files},
        "runs": {commit.run["id"]} if commit.run else set(),
        "steps": {r["id"] for r in commit.extra if r.get("type") == "step"},
        "datasources": {r["id"] for r in commit.extra if r.get("type") == "datasource"},
    }


def _referenced(commit: Commit) -> dict[str, set[str]]:
    """Ids a commit's rows point at through a foreign key (lineage edges to unknown files are dropped, not refused)."""
    extra: dict[str, list[dict[str, Any]]] = {}
    for row in commit.extra:
        extra.setdefault(row.get("type", ""), []).append(row)
    files = {r["file_id"] for r in commit.metadata}
    for kind in ("tombstone", "lock", "step_output", "datapoint", "ds_value"):
        files |= {r["file_id"] for r in extra.get(kind, [])}
    return {
        "files": files,
        "runs": {f["run_id"] for f in commit.files if f.get("run_id")},
        "steps": {r["step_id"] for r in extra.get("step_output", [])},
        "datasources": {r["datasource_id"] for kind in ("datapoint", "datasource_field", "dataset", "ds_value")
                        for r in extra.get(kind, [])},
    }


_TABLES = {"files": t.files, "runs": t.runs, "steps": t.steps, "datasources": t.datasources}


def _existing(catalog: Catalog, wanted: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """Which of the wanted ids each table already holds."""
    found: dict[str, set[str]] = {}
    with catalog.engine.connect() as conn:
        for table_name, ids in wanted.items():
            table = _TABLES[table_name]
            found[table_name] = set()
            for chunk in chunks(sorted(ids)):
                found[table_name].update(conn.execute(sa.select(table.c.id).where(table.c.id.in_(chunk))).scalars())
    return found


def unresolved(catalog: Catalog, commits: Sequence[Commit]) -> dict[str, str]:
    """Commits that cannot apply: commit id -> why, for commits read from records files.

    A commit is refused when a row points at a file, run, step or datasource
    that neither the catalog nor another (not refused) commit of ``commits``
    holds, or sets a metadata key to a type other than the one fixed for it.
    Refusing one commit can strand another that points into it, so this runs
    until nothing changes. Commits already in the catalog are not judged.
    """
    present = catalog.commit_ids()
    todo = [c for c in commits if c.id not in present]
    defined = {c.id: _defined(c) for c in todo}
    referenced = {c.id: _referenced(c) for c in todo}
    wanted: dict[str, set[str]] = {name: set() for name in _TABLES}
    for refs in referenced.values():
        for name, ids in refs.items():
            wanted[name] |= ids
    existing = _existing(catalog, wanted)
    key_types = catalog.key_types({r["key"] for c in todo for r in c.metadata})
    key_types.update(_field_types(catalog, todo))
    refused = _reused_file_ids(catalog, todo, defined)
    changed = True
    while changed:
        changed = False
        known = {name: set(existing[name]) for name in _TABLES}
        for c in todo:
            if c.id not in refused:
                for name, ids in defined[c.id].items():
                    known[name] |= ids
        fixed = dict(key_types)
        for c in sorted(todo, key=lambda c: (c.created_at, c.id)):
            if c.id in refused:
                continue
            reason = _dangling(referenced[c.id], known) or _type_clash(c, fixed)
            if reason:
                refused[c.id] = reason
                changed = True
    return refused


def _reused_file_ids(catalog: Catalog, todo: Sequence[Commit], defined: Mapping[str, dict[str, set[str]]]) -> dict[str, str]:
    """Commits that bring a file id the catalog or another commit already holds: no limnos does that.

    Such a row would be skipped on insert while its name and version still moved the
    name's current version, hiding the file that holds the id.
    """
    counts: dict[str, int] = {}
    for c in todo:
        for file_id in defined[c.id]["files"]:
            counts[file_id] = counts.get(file_id, 0) + 1
    held = _existing(catalog, {"files": set(counts)})["files"] | {i for i, n in counts.items() if n > 1}
    refused = {}
    for c in todo:
        reused = sorted(defined[c.id]["files"] & held)
        if reused:
            refused[c.id] = f"it brings file id {reused[0]}, which another file already holds"
    return refused


def _dangling(refs: Mapping[str, set[str]], known: Mapping[str, set[str]]) -> str | None:
    for name, ids in refs.items():
        missing = sorted(ids - known[name])
        if missing:
            return f"it points at {len(missing)} {name[:-1]}(s) no commit made (first: {missing[0]})"
    return None


def _field_types(catalog: Catalog, commits: Sequence[Commit]) -> dict[str, str]:
    """The types fixed for the datasource fields the commits set, keyed as :func:`_value_key` keys them."""
    wanted = {(r["datasource_id"], r["key"]) for c in commits for r in c.extra if r.get("type") == "ds_value"}
    out: dict[str, str] = {}
    for source in {s for s, _ in wanted}:
        fields = registered_fields(catalog, source)
        out.update({_value_key(source, k): v for k, v in fields.items() if (source, k) in wanted})
    return out


def _value_key(datasource_id: str | None, key: str) -> str:
    """A key of the type map: a metadata key, or a datasource's field (typed per datasource)."""
    return key if datasource_id is None else f"{datasource_id}\0{key}"


def _type_clash(commit: Commit, fixed: dict[str, str]) -> str | None:
    mine: dict[str, str] = {}
    values = [(None, r) for r in commit.metadata]
    values += [(r["datasource_id"], r) for r in commit.extra if r.get("type") in ("ds_value", "datasource_field")]
    for source, row in values:
        if row.get("deleted") or row.get("vtype") is None:
            continue
        key, vtype = _value_key(source, row["key"]), row["vtype"]
        held = fixed.get(key) or mine.get(key)
        if held is not None and held != vtype:
            what = f"metadata key {row['key']!r}" if source is None else f"datasource field {row['key']!r}"
            return f"it sets {what} to {vtype} values, but this lake holds {held} values for it"
        mine[key] = vtype
    fixed.update(mine)
    return None
