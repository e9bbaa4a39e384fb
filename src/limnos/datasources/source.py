"""Datasources: typed metadata tables over lake prefixes, folders and buckets.

A datasource is a named set of *datapoints*, one per file under its root:

* a **lake prefix** (``"raw/images"``): each datapoint is the current version
  of a lake file under it;
* an **external URL** (``"/data/imgs"``, ``"s3://bucket/prefix"``, any fsspec
  URL): each datapoint is a *reference* file (``kind="reference"``, its URL,
  size and etag or mtime), named ``.datasources/<name>/<path>`` in the lake.
  No bytes are copied.

A datapoint's fields are the typed metadata of its file, so they share the
lake's machinery: the type of a field is fixed lake-wide by its first value,
every change is kept (``ds.as_of(t)``), and every change is a commit whose
records file lets ``reindex`` restore it. Datasources, datapoints, their
fields and saved datasets are rows of their own (schema v3), also written
only through commits.

Storage options (credentials) of an external root are this machine's own:
they live in ``<lake>/state/datasources.yaml`` (mode 600), never in the
catalog or the records.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import threading
import warnings
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import yaml

from ..catalog import schema as t
from ..catalog import values as metavalues
from ..catalog.catalog import utc
from ..errors import (
    DatasetNotFound,
    DatasourceNotFound,
    LimnosError,
    MetadataError,
    PartialResultsWarning,
    QueryError,
    SourceNotFound,
    redact_url,
)
from ..names import validate_name
from .query import BUILTINS, Condition, Field, Query, check_fields, compile_count, compile_select, describe

if TYPE_CHECKING:
    import pandas as pd

    from ..lake import Lake
    from .results import Fetcher, QueryResult
    from .scan import ScanReport

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
REF_PREFIX = ".datasources"
#: fields a scan fills in (besides the built-in path and size)
AUTO_FIELDS = ("modified", "content_type", "width", "height")


@dataclass
class SourceInfo:
    id: str
    name: str
    root: str  # a lake prefix ("" or "raw/img/") or an external URL or absolute folder
    kind: str  # lake | external
    created_at: dt.datetime
    scanned_at: dt.datetime | None
    deleted_at: dt.datetime | None = None


def _info(r: Any) -> SourceInfo:
    return SourceInfo(r.id, r.name, r.root, r.kind, utc(r.created_at), utc(r.scanned_at), utc(r.deleted_at))  # type: ignore[arg-type]


@dataclass
class _Shared:
    """What every view of one datasource shares in this process."""

    info: SourceInfo
    lock: threading.RLock = field(default_factory=threading.RLock)
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    scan_error: BaseException | None = None
    fields: dict[str, str] | None = None  # registered field -> type


_SHARED: weakref.WeakKeyDictionary[Lake, dict[str, _Shared]] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def _shared(lake: Lake, info: SourceInfo) -> _Shared:
    with _SHARED_LOCK:
        table = _SHARED.setdefault(lake, {})
        found = table.get(info.id)
        if found is None:
            found = table[info.id] = _Shared(info)
            lake.on_close(found.stop.set)
            lake.on_close(lambda: _join(found))
        return found


def _join(shared: _Shared) -> None:
    thread = shared.thread
    if thread is not None and thread is not threading.current_thread():
        thread.join()


# ------------------------------------------------------------------ options
def _options_path(lake: Lake) -> str:
    return os.path.join(lake.state_dir, "datasources.yaml")


def load_options(lake: Lake, name: str) -> dict[str, Any]:
    try:
        with open(_options_path(lake)) as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        return {}
    return dict((data.get(name) or {}).get("options") or {})


def _save_options(lake: Lake, name: str, options: dict[str, Any] | None) -> None:
    path = _options_path(lake)
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        data = {}
    if options:
        data[name] = {"options": options}
    else:
        data.pop(name, None)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may hold credentials
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(data, f, sort_keys=True)
    os.replace(tmp, path)


# -------------------------------------------------------------------- roots
def parse_root(root: str | os.PathLike[str]) -> tuple[str, str]:
    """(kind, normalized root). A URL, an absolute path or one starting with ./ ../ ~ is an
    external folder or bucket; anything else is a prefix of the lake ("" for the whole lake)."""
    if isinstance(root, os.PathLike):
        root = os.fspath(root)
        if not root.startswith(("/", "~")):
            root = "./" + root
    if not isinstance(root, str):
        raise LimnosError(f"a datasource root is a str or a path, not {type(root).__name__}")
    if "://" in root and not root.startswith("file://"):
        if redact_url(root) != root:
            raise LimnosError("do not put credentials in a datasource URL; pass storage_options= or use the environment")
        return "external", root.rstrip("/")
    local = root.removeprefix("file://")
    if local.startswith(("/", "./", "../", "~")) or local in (".", ".."):
        path = os.path.abspath(os.path.expanduser(local))
        if not os.path.isdir(path):
            raise SourceNotFound(f"{path} is not a folder; check the datasource root")
        return "external", path
    prefix = local.strip("/")
    if prefix:
        try:
            validate_name(prefix)
        except LimnosError as exc:
            raise LimnosError(f"bad datasource root {root!r}: {exc}") from None
        if prefix == REF_PREFIX or prefix.startswith(REF_PREFIX + "/"):
            raise LimnosError(f"{REF_PREFIX}/ holds datasources' references; pick another root")
    return "lake", f"{prefix}/" if prefix else ""


def _check_name(name: str, what: str = "datasource") -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise LimnosError(f"{what} name {name!r} is not valid; use letters, digits, '-', '_' or '.' (at most 128)")
    return name


# ----------------------------------------------------------------- registry
def _find(lake: Lake, name: str) -> SourceInfo | None:
    ds = t.datasources
    stmt = (sa.select(ds).where(ds.c.name == name, ds.c.deleted_at.is_(None))
            .order_by(ds.c.created_at, ds.c.id).limit(1))
    with lake.catalog.engine.connect() as conn:
        r = conn.execute(stmt).first()
    return _info(r) if r else None


def _by_id(lake: Lake, source_id: str) -> SourceInfo:
    with lake.catalog.engine.connect() as conn:
        r = conn.execute(sa.select(t.datasources).where(t.datasources.c.id == source_id)).first()
    if r is None:
        raise DatasourceNotFound(f"no datasource with id {source_id}")
    return _info(r)


def get_or_create(lake: Lake, name: str, root: str | os.PathLike[str] | None = None, *,
                  storage_options: Mapping[str, Any] | None = None, scan: bool | str = "background") -> Datasource:
    """``lake.datasource(name, root)``: the datasource ``name``, created over ``root`` if new."""
    _check_name(name)
    info = _find(lake, name)
    if storage_options is not None:
        _save_options(lake, name, dict(storage_options))
    if info is not None:
        if root is not None and parse_root(root) != (info.kind, info.root):
            raise LimnosError(f"datasource {name!r} exists over {info.root or '(the whole lake)'}; "
                              "pick another name or delete it first (ds.delete_source())")
        return Datasource(lake, _shared(lake, info))
    if root is None:
        raise DatasourceNotFound(f"no datasource named {name!r}; create it with lake.datasource({name!r}, root) "
                                 "or see 'limnos ds list'")
    kind, normalized = parse_root(root)
    if kind == "external":
        _check_reachable(lake, name, normalized)
    commit = lake.new_commit("datasource")
    from ..names import new_id

    commit.extra.append({"type": "datasource", "id": new_id(), "name": name, "root": normalized, "kind": kind})
    commit.write()
    info = _find(lake, name)
    assert info is not None
    ds = Datasource(lake, _shared(lake, info))
    if info.id != commit.extra[0]["id"]:
        # Another process created the same name at the same moment: theirs (the older) wins.
        loser = lake.new_commit("datasource")
        loser.extra.append({"type": "datasource_delete", "datasource_id": commit.extra[0]["id"]})
        loser.write()
        return ds
    if scan == "background":
        ds.scan(background=True)
    elif scan:
        ds.scan()
    return ds


def _check_reachable(lake: Lake, name: str, root: str) -> None:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(root, **load_options(lake, name))
        ok = fs.exists(path)
    except Exception as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SourceNotFound(f"cannot read {redact_url(root)}: {redact_url(detail)}; check the URL and storage_options") from None
    if not ok:
        raise SourceNotFound(f"{redact_url(root)} does not exist; check the URL")


def list_datasources(lake: Lake) -> list[Datasource]:
    ds = t.datasources
    stmt = sa.select(ds).where(ds.c.deleted_at.is_(None)).order_by(ds.c.name, ds.c.created_at)
    with lake.catalog.engine.connect() as conn:
        infos = [_info(r) for r in conn.execute(stmt)]
    seen: dict[str, Datasource] = {}
    for info in infos:
        seen.setdefault(info.name, Datasource(lake, _shared(lake, info)))
    return list(seen.values())


@dataclass
class SavedDataset:
    """A saved query on a datasource (``ds.save_dataset(name)``), optionally pinned to a time."""

    name: str
    datasource: str
    datasource_id: str
    query: dict[str, Any]
    as_of: dt.datetime | None
    created_at: dt.datetime
    _lake: Any = field(default=None, repr=False, compare=False)

    def load(self) -> Datasource:
        return load_dataset(self._lake, self.name)

    def delete(self) -> None:
        commit = self._lake.new_commit("dataset")
        commit.extra.append({"type": "dataset_delete", "name": self.name})
        commit.write()

    def to_dict(self) -> dict[str, Any]:
        where = Query.from_json(self.query).where
        return {"name": self.name, "datasource": self.datasource, "query": describe(where), "saved_query": self.query,
                "as_of": self.as_of.isoformat() if self.as_of else None, "created_at": self.created_at.isoformat()}


def list_datasets(lake: Lake) -> list[SavedDataset]:
    d, ds = t.datasets, t.datasources
    stmt = sa.select(d, ds.c.name.label("source")).join(ds, ds.c.id == d.c.datasource_id).order_by(d.c.name)
    with lake.catalog.engine.connect() as conn:
        return [SavedDataset(r.name, r.source, r.datasource_id, r.query, utc(r.as_of), utc(r.created_at), lake)  # type: ignore[arg-type]
                for r in conn.execute(stmt)]


def load_dataset(lake: Lake, name: str) -> Datasource:
    """``lake.dataset(name)``: the datasource view with the saved query (and pinned time) applied."""
    found = [d for d in list_datasets(lake) if d.name == name]
    if not found:
        import difflib

        names = [d.name for d in list_datasets(lake)]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"did you mean {', '.join(map(repr, close))}?" if close else "see 'limnos datasets'"
        raise DatasetNotFound(f"no dataset named {name!r}; {hint}")
    saved = found[0]
    info = _by_id(lake, saved.datasource_id)
    return Datasource(lake, _shared(lake, info), Query.from_json(saved.query, saved.as_of), dataset=name)


# --------------------------------------------------------------- datasource
class Datasource:
    """A datasource, or a view of it (a query): ``ds[ds["episode"] > 5].all().dataframe``.

    Views share the datasource; ``ds[q]``, ``select``, ``order_by``, ``limit``
    and ``as_of`` return new views and never change ``ds``.
    """

    def __init__(self, lake: Lake, shared: _Shared, query: Query | None = None, dataset: str | None = None) -> None:
        self._lake = lake
        self._shared = shared
        self.query = query or Query()
        #: the saved dataset this view was loaded from, if any
        self.dataset = dataset

    # -- identity ----------------------------------------------------------
    @property
    def name(self) -> str:
        return self._shared.info.name

    @property
    def id(self) -> str:
        return self._shared.info.id

    @property
    def root(self) -> str:
        return self._shared.info.root

    @property
    def kind(self) -> str:
        return self._shared.info.kind

    @property
    def source_prefix(self) -> str:
        """What ``download_files(keep_source_prefix=True)`` puts in front of each path."""
        if self.kind == "lake":
            return self.root.rstrip("/")
        return os.path.basename(self.root.rstrip("/")) or "source"

    def __repr__(self) -> str:
        where = "" if self.query == Query() else f" where {describe(self.query.where)}"
        return f"<Datasource {self.name} over {redact_url(self.root) or '(the whole lake)'}{where}>"

    def _view(self, query: Query) -> Datasource:
        return Datasource(self._lake, self._shared, query, self.dataset)

    def _fetcher(self) -> Fetcher:
        from .results import Fetcher

        return Fetcher(self._lake, load_options(self._lake, self.name),
                       os.path.join(self._lake.state_dir, "refcache", self.id))

    def _reload(self) -> SourceInfo:
        self._shared.info = _by_id(self._lake, self.id)
        return self._shared.info

    # -- fields ------------------------------------------------------------
    def _registered(self, refresh: bool = False) -> dict[str, str]:
        if self._shared.fields is None or refresh:
            f, k = t.datasource_fields, t.key_types
            stmt = (sa.select(k.c.key, k.c.type).join(f, f.c.key == k.c.key)
                    .where(f.c.datasource_id == self.id).order_by(k.c.key))
            with self._lake.catalog.engine.connect() as conn:
                self._shared.fields = dict(conn.execute(stmt).all())  # type: ignore[arg-type]
        return self._shared.fields

    def _types(self, names: Iterable[str] = (), refresh: bool = False) -> dict[str, str]:
        """Field -> type for the fields this datasource knows (and, over a lake prefix, any lake key)."""
        types = {**BUILTINS, **self._registered(refresh)}
        missing = [n for n in names if n not in types]
        if missing and self.kind == "lake":
            types.update(self._lake.catalog.key_types(missing))
            missing = [n for n in missing if n not in types]
        if missing and not refresh:
            return self._types(names, refresh=True)
        check_fields(names, list(types), self.name)
        return types

    @property
    def fields(self) -> dict[str, str]:
        """Every field of the datasource and its type: path, size, then the metadata fields."""
        return {**BUILTINS, **self._registered(refresh=True)}

    # -- views -------------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            self._types([key])
            return Field(key)
        if isinstance(key, Condition):
            self._types(key.fields())
            return self._view(self.query.and_where(key))
        if isinstance(key, Field):
            raise QueryError(f"ds[ds[{key.name!r}]] needs a condition, such as ds[ds[{key.name!r}] == True]")
        if isinstance(key, (list, tuple)) and all(isinstance(k, str) for k in key):
            return self.select(*key)
        raise QueryError(f"index a datasource with a field name or a condition, not {type(key).__name__}")

    def select(self, *fields: str) -> Datasource:
        """A view that fetches only these fields (path always comes along)."""
        self._types(fields)
        return self._view(replace(self.query, select=tuple(fields)))

    def order_by(self, field: str, desc: bool = False) -> Datasource:
        """A view ordered by ``field`` (missing values last), then by path; calls chain."""
        self._types([field])
        return self._view(replace(self.query, order=(*self.query.order, (field, bool(desc)))))

    def limit(self, n: int) -> Datasource:
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise QueryError(f"limit takes a count >= 0, not {n!r}")
        current = self.query.limit
        return self._view(replace(self.query, limit=n if current is None else min(n, current)))

    def as_of(self, when: dt.datetime) -> Datasource:
        """A view of the datapoints and field values as they were at ``when`` (naive means UTC)."""
        if not isinstance(when, dt.datetime):
            raise QueryError(f"as_of takes a datetime, not {type(when).__name__}")
        return self._view(replace(self.query, as_of=metavalues.to_utc(when)))

    # -- running -----------------------------------------------------------
    @property
    def scanning(self) -> bool:
        thread = self._shared.thread
        return thread is not None and thread.is_alive()

    def _partial(self) -> bool:
        if self._shared.scan_error is not None and not self.scanning:
            error, self._shared.scan_error = self._shared.scan_error, None
            warnings.warn(PartialResultsWarning(f"the background scan of {self.name!r} failed ({error}); "
                                                "results may be partial, run ds.scan() again"), stacklevel=4)
            return True
        info = self._shared.info if self.scanning else self._reload()
        if self.scanning or info.scanned_at is None:
            warnings.warn(PartialResultsWarning(f"datasource {self.name!r} is still being scanned; results may be "
                                                "partial (ds.wait() waits for the scan)"), stacklevel=4)
            return True
        return False

    def _run(self, query: Query) -> QueryResult:
        from .query import choose_plan
        from .results import QueryResult

        types = self._types(query.fields())
        partial = self._partial()
        engine = self._lake.catalog.engine
        dialect = engine.dialect.name
        rows: list[tuple[Any, dict[str, Any]]] = []
        with engine.connect() as conn:
            plan = choose_plan(conn, query, types, dialect)
            stmt = compile_select(query, self.id, types, dialect, fields=query.select, plan=plan)
            for r in conn.execute(stmt):
                if not rows or rows[-1][0].dp_id != r.dp_id:
                    rows.append((r, {}))
                if r.key is not None:
                    rows[-1][1][r.key] = metavalues.decode(r.type, r.v_int, r.v_float, r.v_str)
                    types.setdefault(r.key, r.type)
        return QueryResult(self, rows, types, query.select, partial)

    def all(self) -> QueryResult:
        """Every datapoint the view matches (respecting its limit)."""
        return self._run(self.query)

    def head(self, n: int = 100) -> QueryResult:
        """The first ``n`` datapoints the view matches."""
        return self._run(self.limit(n).query)

    def count(self) -> int:
        """How many datapoints the view matches (ignoring any limit), in one COUNT query."""
        from .query import choose_plan

        types = self._types(self.query.fields())
        engine = self._lake.catalog.engine
        dialect = engine.dialect.name
        unlimited = replace(self.query, limit=None)
        with engine.connect() as conn:
            plan = choose_plan(conn, unlimited, types, dialect)
            n = int(conn.execute(compile_count(unlimited, self.id, types, dialect, plan)).scalar() or 0)
        return n if self.query.limit is None else min(n, self.query.limit)

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.all())

    # -- scanning ----------------------------------------------------------
    def scan(self, background: bool = False) -> ScanReport | None:
        """Scan the root: add new files, follow changed ones, end vanished ones. Incremental.

        ``background=True`` scans in a thread and returns at once; queries
        meanwhile warn that their results may be partial. Otherwise waits for
        any running scan first, then scans and returns the report.
        """
        from .scan import scan as run_scan

        if background:
            with self._shared.lock:
                if self.scanning:
                    return None
                self._shared.stop.clear()
                self._shared.scan_error = None

                def work() -> None:
                    try:
                        run_scan(self, self._shared.stop)
                    except BaseException as exc:
                        self._shared.scan_error = exc

                self._shared.thread = threading.Thread(target=work, name=f"limnos-scan-{self.name}", daemon=True)
                self._shared.thread.start()
            return None
        self.wait(raise_error=False)
        return run_scan(self, None)

    def wait(self, raise_error: bool = True) -> None:
        """Wait for a background scan; raise its error, if it failed."""
        _join(self._shared)
        self._shared.thread = None
        error, self._shared.scan_error = self._shared.scan_error, None
        if error is not None and raise_error:
            raise LimnosError(f"the scan of {self.name!r} failed: {error}") from error

    # -- metadata ----------------------------------------------------------
    @contextlib.contextmanager
    def metadata_context(self) -> Iterator[MetadataContext]:
        """Collect metadata updates; they are written in one commit when the block exits cleanly.

        >>> with ds.metadata_context() as ctx:
        ...     ctx.update_metadata("images/005.jpg", {"episode": 5, "has_baby_yoda": True})
        """
        ctx = MetadataContext(self)
        yield ctx
        ctx.commit()

    def upload_metadata_from_dataframe(self, df: pd.DataFrame, path_column: str | int | None = None) -> int:
        """Set fields from a DataFrame: one row per datapoint, its path in ``path_column``
        (a name or position; the first column by default), every other column a field.
        Types come from the dtypes; missing values (NaN, None, NaT) are skipped. Returns the rows written."""
        from .scan import frame_updates

        fixed = self._lake.catalog.key_types([str(c) for c in df.columns])
        updates = frame_updates(df, path_column, fixed)
        ctx = MetadataContext(self)
        for path, meta in updates:
            ctx.update_metadata(path, meta)
        ctx.commit()
        return len(updates)

    def delete_metadata(self, paths: str | Sequence[str], keys: str | Sequence[str]) -> None:
        """Remove fields from datapoints; their past values stay readable with ``as_of``."""
        paths = [paths] if isinstance(paths, str) else list(paths)
        keys = [keys] if isinstance(keys, str) else list(keys)
        self._types(keys)
        ctx = MetadataContext(self)
        ctx.delete_metadata(paths, keys)
        ctx.commit()

    # -- admin -------------------------------------------------------------
    def save_dataset(self, name: str, pin: bool = False, overwrite: bool = False) -> SavedDataset:
        """Save this view's query as a dataset; ``lake.dataset(name)`` brings it back.

        A view with ``as_of`` is saved pinned to that time; ``pin=True`` pins it to now.
        """
        _check_name(name, "dataset")
        if not overwrite and any(d.name == name for d in list_datasets(self._lake)):
            raise LimnosError(f"a dataset named {name!r} exists; pass overwrite=True to replace it")
        when = self.query.as_of or (metavalues.to_utc(dt.datetime.now(dt.timezone.utc)) if pin else None)
        commit = self._lake.new_commit("dataset")
        commit.extra.append({"type": "dataset", "name": name, "datasource_id": self.id,
                             "query": self.query.to_json(), "as_of": when.isoformat() if when else None})
        commit.write()
        return next(d for d in list_datasets(self._lake) if d.name == name)

    def delete_source(self) -> None:
        """Delete the datasource, its saved datasets and (for an external root) its references."""
        self._shared.stop.set()
        self.wait(raise_error=False)
        with self._shared.lock:
            commit = self._lake.new_commit("datasource")
            dp = t.datapoints
            with self._lake.catalog.engine.connect() as conn:
                current = conn.execute(sa.select(dp.c.id, dp.c.file_id)
                                       .where(dp.c.datasource_id == self.id, dp.c.removed_at.is_(None))).all()
                datasets = conn.execute(sa.select(t.datasets.c.name).where(t.datasets.c.datasource_id == self.id)).scalars().all()
            commit.extra.extend([{"type": "datapoint_end", "id": r.id} for r in current])
            if self.kind == "external":
                commit.extra.extend([{"type": "tombstone", "file_id": r.file_id, "deleted_at": commit.created_at} for r in current])
            commit.extra.extend([{"type": "dataset_delete", "name": n} for n in datasets])
            commit.extra.append({"type": "datasource_delete", "datasource_id": self.id})
            commit.write()
        _save_options(self._lake, self.name, None)
        self._reload()


class MetadataContext:
    """``ds.metadata_context()``: updates collected here are committed together on exit."""

    def __init__(self, datasource: Datasource) -> None:
        self._ds = datasource
        self._updates: dict[str, dict[str, Any]] = {}
        self._deletes: dict[str, set[str]] = {}

    def update_metadata(self, paths: str | Sequence[str], metadata: Mapping[str, Any]) -> None:
        """Set ``metadata`` on one path or several, relative to the datasource's root."""
        if not isinstance(metadata, Mapping):
            raise MetadataError(f"metadata must be a dict of field -> value, not {type(metadata).__name__}")
        for key, value in metadata.items():
            _check_field_name(key)
            metavalues.infer_type(value)  # fail here, at the line with the bad value
        for path in [paths] if isinstance(paths, str) else list(paths):
            if not isinstance(path, str):
                raise MetadataError(f"datapoint paths are str, not {type(path).__name__}")
            self._updates.setdefault(path, {}).update(metadata)
            if path in self._deletes:
                self._deletes[path] -= set(metadata)

    def delete_metadata(self, paths: str | Sequence[str], keys: str | Sequence[str]) -> None:
        keys = [keys] if isinstance(keys, str) else list(keys)
        for path in [paths] if isinstance(paths, str) else list(paths):
            self._deletes.setdefault(path, set()).update(keys)
            for key in keys:
                self._updates.get(path, {}).pop(key, None)

    def commit(self) -> None:
        if self._updates or self._deletes:
            from .scan import write_metadata

            write_metadata(self._ds, self._updates, self._deletes)
            self._updates, self._deletes = {}, {}


def _check_field_name(key: Any) -> None:
    metavalues.validate_key(key)
    if key in BUILTINS:
        raise MetadataError(f"{key!r} is a built-in field of every datapoint; pick another name, such as '{key}_'")


__all__ = ["AUTO_FIELDS", "Datasource", "MetadataContext", "SavedDataset", "SourceInfo", "get_or_create",
           "list_datasets", "list_datasources", "load_dataset", "load_options", "parse_root"]


def reference_fetcher(lake: Lake, file: Any) -> Fetcher:
    """A fetcher for a reference file, with the storage options of the datasource that made it."""
    from .results import Fetcher

    name = file.name.split("/")[1] if file.name.startswith(REF_PREFIX + "/") else ""
    return Fetcher(lake, load_options(lake, name) if name else {}, os.path.join(lake.state_dir, "refcache", "files"))
