"""Scanning a datasource's root, and writing datapoint metadata.

A scan lists the root (a lake prefix: one catalog query; an external URL:
the top folder, then every subfolder in parallel), compares each file's
fingerprint (etag, or size and mtime; the file id for lake files) with the
current datapoints, and commits in batches, so queries during a long scan
see the datapoints found so far. New files get a datapoint with automatic
fields (modified time, content type, image width and height when Pillow is
installed), which are the datasource's own fields as every other is (schema
v5: ``ds_value`` rows, typed per datasource); a file whose content changed
gets a new datapoint on the new file, with the old one's user fields carried over; a vanished file's
datapoint ends. The last commit marks the scan complete. Running it again
does only the differences.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from ..catalog import FileRow
from ..catalog import values as metavalues
from ..catalog.datasources import CurrentDatapoint, current_datapoints, current_values, keys_set
from ..errors import FileNotFound, InvalidName, MetadataError, redact_url
from ..names import new_id, validate_name
from ..progress import progress
from .fetch import Fetcher, source_fetcher
from .state import AUTO_FIELDS, REF_PREFIX, SourceState, known_fields, load_options, ref_name

if TYPE_CHECKING:
    import pandas as pd

    from ..core.base import LakeBase
    from ..core.commits import CommitBuilder

BATCH = 2000  # datapoints per commit while scanning


@dataclass
class Entry:
    """One file found under a datasource's root."""

    path: str
    size: int
    fingerprint: str
    modified: dt.datetime | None
    file: FileRow | None = None  # a lake file (lake roots)
    uri: str | None = None  # its URL (external roots)
    dims: tuple[int, int] | None = None


@dataclass
class ScanReport:
    """What a scan changed."""

    datasource: str
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)  # paths that are not valid names, with why
    complete: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-compatible data (for ``--json``)."""
        return {"datasource": self.datasource, "added": self.added, "changed": self.changed, "removed": self.removed,
                "unchanged": self.unchanged, "skipped": self.skipped, "complete": self.complete,
                "seconds": round(self.seconds, 3)}


def _current(lake: LakeBase, state: SourceState, paths: Iterable[str] | None = None) -> dict[str, CurrentDatapoint]:
    return current_datapoints(lake.catalog, state.info.id, paths)


# ------------------------------------------------------------------ listing
def _lake_entries(state: SourceState, rows: Iterable[FileRow]) -> dict[str, Entry]:
    prefix = state.info.root
    out = {}
    for r in rows:
        if r.name.startswith(REF_PREFIX + "/") or not r.name.startswith(prefix):
            continue
        path = r.name[len(prefix) :]
        out[path] = Entry(path, r.size, r.id, r.created_at, file=r)
    return out


def _external_fs(lake: LakeBase, state: SourceState) -> tuple[Any, str]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(state.info.root, **load_options(lake, state.info.name))
    fs.invalidate_cache()  # listings must be fresh: a rescan looks for changes
    return fs, str(path).rstrip("/")


def _entry_from_info(state: SourceState, base: str, info: Mapping[str, Any], skipped: list[str]) -> Entry | None:
    name = str(info["name"]).rstrip("/")
    if not name.startswith(base + "/"):
        return None
    path = name[len(base) + 1 :]
    try:
        validate_name(ref_name(state.info.name, path))
    except InvalidName as exc:
        skipped.append(f"{path}: {exc}")
        return None
    size = int(info.get("size") or 0)
    raw = info.get("mtime") or info.get("LastModified") or info.get("updated") or info.get("last_modified")
    modified = None
    if isinstance(raw, dt.datetime):
        modified = metavalues.to_utc(raw)
    elif isinstance(raw, (int, float)):
        modified = dt.datetime.fromtimestamp(raw, dt.timezone.utc)
    elif isinstance(raw, str):
        try:
            modified = metavalues.to_utc(metavalues.parse_timestamp(raw))
        except ValueError:
            modified = None
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    mtime_key = int(modified.timestamp() * 1e6) if modified else 0
    fingerprint = str(etag).strip('"') if etag else f"{size}:{mtime_key}"
    uri = f"{state.info.root}/{path}"
    return Entry(path, size, fingerprint, modified, uri=uri)


def list_entries(lake: LakeBase, state: SourceState) -> tuple[dict[str, Entry], list[str]]:
    """Every file under the datasource's root, by path, and the paths skipped (with why)."""
    if state.info.kind == "lake":
        return _lake_entries(state, lake.catalog.latest(state.info.root)), []
    fs, base = _external_fs(lake, state)
    skipped: list[str] = []
    try:
        top = fs.ls(base, detail=True)
    except FileNotFoundError:
        top = []
    infos = [i for i in top if i.get("type") != "directory"]
    folders = [str(i["name"]).rstrip("/") for i in top if i.get("type") == "directory"]
    with progress(len(folders) or None, f"listing {state.info.name}", "folders") as advance:
        def find(folder: str) -> list[Mapping[str, Any]]:
            found = list(fs.find(folder, detail=True).values())
            advance(1)
            return found

        with ThreadPoolExecutor(max(1, min(16, len(folders)))) as pool:
            for found in pool.map(find, folders):
                infos += found
    out = {}
    for info in infos:
        if info.get("type") == "directory":
            continue
        entry = _entry_from_info(state, base, info, skipped)
        if entry is not None:
            out[entry.path] = entry
    return out, skipped


def stat_entries(lake: LakeBase, state: SourceState, paths: Sequence[str]) -> dict[str, Entry]:
    """Entries for these paths (for metadata set before a scan found them); absent ones are left out."""
    if state.info.kind == "lake":
        rows = lake.catalog.latest_rows([state.info.root + p for p in paths])
        return _lake_entries(state, rows.values())
    fs, base = _external_fs(lake, state)
    skipped: list[str] = []

    def one(path: str) -> Entry | None:
        try:
            info = fs.info(f"{base}/{path}")
        except (FileNotFoundError, OSError):
            return None
        if info.get("type") == "directory":
            return None
        return _entry_from_info(state, base, info, skipped)

    with ThreadPoolExecutor(max(1, min(16, len(paths)))) as pool:
        found = [e for e in pool.map(one, paths) if e is not None]
    return {e.path: e for e in found}


# --------------------------------------------------------- automatic fields
def _image_size(lake: LakeBase, fetcher: Fetcher, entry: Entry) -> tuple[int, int] | None:
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with _open_entry(lake, fetcher, entry) as handle, Image.open(handle) as image:
            return int(image.size[0]), int(image.size[1])
    except Exception:  # not an image after all, or unreadable: no dimensions
        return None


def _open_entry(lake: LakeBase, fetcher: Fetcher, entry: Entry) -> IO[bytes]:
    """Open an entry's bytes: a lake file's object, or the referenced file."""
    if entry.file is not None:
        digest = entry.file.hash
        if not digest:
            raise FileNotFound(f"{entry.path} has no object")
        return lake.cache.open(digest) if lake.cache.has(digest) else lake.store.open(digest)
    if entry.uri is None:
        raise FileNotFound(f"{entry.path} has no URL")
    return fetcher.open_reference(entry.uri) if "://" in entry.uri else open(entry.uri, "rb")  # the caller closes it


def _fill_dims(lake: LakeBase, state: SourceState, entries: Sequence[Entry]) -> None:
    images = [e for e in entries if (mimetypes.guess_type(e.path)[0] or "").startswith("image/")]
    if not images:
        return
    fetcher = source_fetcher(lake, state.info)
    with ThreadPoolExecutor(max(1, min(16, len(images)))) as pool:
        for entry, dims in zip(images, pool.map(lambda e: _image_size(lake, fetcher, e), images), strict=True):
            entry.dims = dims


def _auto_values(entry: Entry) -> dict[str, Any]:
    values: dict[str, Any] = {"modified": entry.modified, "content_type": mimetypes.guess_type(entry.path)[0]}
    if entry.dims:
        values["width"], values["height"] = entry.dims
    return {k: v for k, v in values.items() if v is not None}


def _value_row(source_id: str, file_id: str, key: str, value: Any, vtype: str) -> dict[str, Any]:
    """A ``ds_value`` records row: the datasource's field ``key`` set to ``value`` on a datapoint's file."""
    _, v_int, v_float, v_str = metavalues.encode(value, vtype)
    return {"type": "ds_value", "datasource_id": source_id, "file_id": file_id, "key": key, "vtype": vtype,
            "v_int": v_int, "v_float": v_float, "v_str": v_str, "deleted": False}


def stage(lake: LakeBase, state: SourceState, commit: CommitBuilder, entries: Sequence[Entry],
          current: Mapping[str, CurrentDatapoint], report: ScanReport | None = None) -> dict[str, str]:
    """Add datapoint rows for new or changed entries to ``commit``; return path -> file id."""
    info = state.info
    fixed = known_fields(lake, state)
    have: dict[str, dict[str, Any]] = {}
    for v in current_values(lake.catalog, info.id, [e.file.id for e in entries if e.file is not None]):
        have.setdefault(v.file_id, {})[v.key] = metavalues.decode(v.type, v.v_int, v.v_float, v.v_str)
    carried: list[tuple[str, str]] = []
    out: dict[str, str] = {}
    used: dict[str, str] = {}
    for e in entries:
        old = current.get(e.path)
        if old is not None and old.fingerprint == e.fingerprint:
            if report:
                report.unchanged += 1
            continue
        if e.file is not None:
            file_id, existing = e.file.id, have.get(e.file.id, {})
        else:
            file_id = commit.add_file(ref_name(info.name, e.path), None, e.size, kind="reference", uri=e.uri)["id"]
            existing = {}
        out[e.path] = file_id
        commit.extra.append({"type": "datapoint", "id": new_id(), "datasource_id": info.id, "path": e.path,
                             "file_id": file_id, "fingerprint": e.fingerprint})
        if old is not None:
            commit.extra.append({"type": "datapoint_end", "id": old.id})
            if old.file_id != file_id:
                carried.append((old.file_id, file_id))
        for key, value in _auto_values(e).items():
            vtype = metavalues.infer_type(value)
            if fixed.get(key, vtype) != vtype or existing.get(key) == value:
                continue
            commit.add_rows([_value_row(info.id, file_id, key, value, vtype)])
            used[key] = vtype
        if report:
            if old is None:
                report.added += 1
            else:
                report.changed += 1
    _carry(lake, state, commit, carried, have)
    register_fields(lake, state, commit, used)
    return out


def _carry(lake: LakeBase, state: SourceState, commit: CommitBuilder, pairs: list[tuple[str, str]],
           have: Mapping[str, dict[str, Any]]) -> None:
    """Copy user fields from each replaced file to its successor (which keeps its own values)."""
    if not pairs:
        return
    successor = dict(pairs)
    for v in current_values(lake.catalog, state.info.id, list(successor), exclude_keys=AUTO_FIELDS):
        new = successor[v.file_id]
        if v.key in have.get(new, {}):
            continue
        commit.add_rows([{"type": "ds_value", "datasource_id": state.info.id, "file_id": new, "key": v.key,
                          "vtype": v.type, "v_int": v.v_int, "v_float": v.v_float, "v_str": v.v_str, "deleted": False}])


def register_fields(lake: LakeBase, state: SourceState, commit: CommitBuilder, types: Mapping[str, str]) -> None:
    """Add to ``commit`` a registration, with its type, of each field in ``types`` the datasource does not have yet."""
    known = known_fields(lake, state)
    commit.add_rows([{"type": "datasource_field", "datasource_id": state.info.id, "key": key, "vtype": types[key]}
                     for key in sorted(set(types) - set(known))])


# --------------------------------------------------------------------- scan
def scan(lake: LakeBase, state: SourceState, stop: threading.Event | None) -> ScanReport:
    """Scan the datasource's root: add new files, follow changed ones, end vanished ones.

    Commits every :data:`BATCH` datapoints; when ``stop`` is set, returns
    (incomplete) before the next batch. The last commit marks the scan complete.
    """
    started = time.perf_counter()
    info = state.info
    report = ScanReport(info.name)
    entries, report.skipped = list_entries(lake, state)
    before = _current(lake, state)
    todo = [e for p, e in sorted(entries.items()) if p not in before or before[p].fingerprint != e.fingerprint]
    report.unchanged = len(entries) - len(todo)
    with progress(len(todo), f"scanning {info.name}") as advance:
        for i in range(0, len(todo), BATCH):
            if stop is not None and stop.is_set():
                report.seconds = time.perf_counter() - started
                return report
            batch = todo[i : i + BATCH]
            _fill_dims(lake, state, batch)
            with state.lock, lake.writing():  # gc keeps copied objects until the commit names them
                commit = lake.new_commit("scan")
                stage(lake, state, commit, batch, _current(lake, state, [e.path for e in batch]), report)
                if commit.files or commit.extra or commit.metadata:
                    commit.write()
                    state.fields = None
            advance(len(batch))
    with state.lock:
        commit = lake.new_commit("scan")
        gone = [c for p, c in _current(lake, state).items() if p not in entries]
        commit.extra.extend([{"type": "datapoint_end", "id": c.id} for c in gone])
        if info.kind == "external":
            commit.extra.extend([{"type": "tombstone", "file_id": c.file_id, "deleted_at": commit.created_at} for c in gone])
        commit.extra.append({"type": "datasource_scan", "datasource_id": info.id})
        commit.write()
    report.removed = len(gone)
    report.complete = True
    report.seconds = time.perf_counter() - started
    return report


# ----------------------------------------------------------------- metadata
def write_metadata(lake: LakeBase, state: SourceState, updates: Mapping[str, Mapping[str, Any]],
                   deletes: Mapping[str, set[str]]) -> None:
    """One commit: datapoints for paths not scanned yet, then every value set and key removed.

    Raises:
        FileNotFound: a path is neither a datapoint nor a file under the root.
        MetadataError, SchemaError: a value is invalid or does not match its field's type.
    """
    paths = sorted(set(updates) | set(deletes))
    fixed = known_fields(lake, state, refresh=True)
    batch: dict[str, str] = {}
    typed: list[tuple[str, str, Any, str]] = []
    for path, meta in updates.items():
        for key, value in meta.items():
            vtype = metavalues.check_type(key, value, fixed.get(key) or batch.get(key))
            try:
                metavalues.encode(value, vtype) if vtype != "blob" else None
            except MetadataError as exc:
                raise MetadataError(f"field {key!r} of {path!r}: {exc}") from None
            batch.setdefault(key, vtype)
            typed.append((path, key, value, vtype))
    with state.lock, lake.writing():  # blob values and copied files are objects: kept until committed
        current = _current(lake, state, paths)
        commit = lake.new_commit("metadata")
        file_of = {p: c.file_id for p, c in current.items()}
        missing = [p for p in paths if p not in current]
        if missing:
            found = stat_entries(lake, state, missing)
            absent = [p for p in missing if p not in found]
            if absent:
                shown = ", ".join(repr(p) for p in absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
                where = redact_url(state.info.root) or "the lake"
                raise FileNotFound(f"no file {shown} under {where}; datapoint paths are relative to the datasource's root")
            _fill_dims(lake, state, list(found.values()))
            file_of.update(stage(lake, state, commit, list(found.values()), {}))
        blobs: dict[int, str] = {}
        for path, key, value, vtype in typed:
            if vtype == "blob":
                value = blobs.get(id(value)) or blobs.setdefault(id(value), lake.store_blob(bytes(value)))
            commit.add_rows([_value_row(state.info.id, file_of[path], key, value, vtype)])
        if deletes:
            commit.add_rows(_deletion_rows(lake, state, {file_of[p]: ks for p, ks in deletes.items()}))
        register_fields(lake, state, commit, batch)
        commit.write()
        state.fields = None


def _deletion_rows(lake: LakeBase, state: SourceState, wanted: Mapping[str, set[str]]) -> list[dict[str, Any]]:
    """Deletion rows for the (file, field) pairs that are set; others have nothing to delete."""
    have = keys_set(lake.catalog, state.info.id, list(wanted))
    return [{"type": "ds_value", "datasource_id": state.info.id, "file_id": fid, "key": key, "vtype": "deleted",
             "v_int": None, "v_float": None, "v_str": None, "deleted": True}
            for fid in sorted(have) for key in sorted(have[fid] & wanted[fid])]


def frame_updates(df: pd.DataFrame, path_column: str | int | None,
                  fixed: Mapping[str, str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(path, fields) per row of a DataFrame, typed by each column's dtype; missing values left out."""
    import pandas as pd
    from pandas.api import types as pdt

    if path_column is None:
        if len(df.columns) == 0:
            raise MetadataError("the DataFrame has no columns; its first column must hold the paths")
        column = df.columns[0]
    elif isinstance(path_column, int) and path_column not in df.columns:
        if not 0 <= path_column < len(df.columns):
            raise MetadataError(f"path_column {path_column} is out of range: the DataFrame has {len(df.columns)} columns")
        column = df.columns[path_column]
    else:
        column = path_column
    if column not in df.columns:
        raise MetadataError(f"the DataFrame has no column {column!r}; its columns are {', '.join(map(str, df.columns))}")
    others = [c for c in df.columns if c != column]
    for c in others:
        if not isinstance(c, str):
            raise MetadataError(f"column names are field names and must be str, not {c!r}")
    converted: dict[str, list[Any]] = {}
    for c in others:
        series = df[c]
        if pdt.is_bool_dtype(series.dtype):
            conv: Any = bool
        elif pdt.is_integer_dtype(series.dtype):
            conv = int
        elif pdt.is_float_dtype(series.dtype):
            values = series.dropna()
            integral = (fixed or {}).get(c) == "int" and bool(len(values)) and bool((values == values.round()).all())
            conv = int if integral else float
        elif pdt.is_datetime64_any_dtype(series.dtype):
            conv = lambda v: metavalues.to_utc(v.to_pydatetime())  # noqa: E731
        else:
            conv = lambda v: v.item() if hasattr(v, "item") and not isinstance(v, (bytes, str)) else v  # noqa: E731
        out = []
        for v in series.tolist() if not pdt.is_datetime64_any_dtype(series.dtype) else list(series):
            missing = v is None or (not isinstance(v, (list, dict, tuple, bytes, str)) and bool(pd.isna(v)))
            out.append(None if missing else conv(v))
        converted[c] = out
    paths = df[column].tolist()
    updates = []
    for i, path in enumerate(paths):
        if path is None or (isinstance(path, float) and path != path):
            raise MetadataError(f"row {i} of the DataFrame has no path in column {column!r}")
        meta = {c: converted[c][i] for c in others if converted[c][i] is not None}
        updates.append((str(path), meta))
    return updates


__all__ = ["BATCH", "Entry", "ScanReport", "frame_updates", "list_entries", "register_fields", "scan", "stage",
           "stat_entries", "write_metadata"]
