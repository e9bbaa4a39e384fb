"""Datasources: typed metadata tables over lake prefixes, folders and buckets.

A datasource is a named set of *datapoints*, one per file under its root:

* a **lake prefix** (``"raw/images"``): each datapoint is the current version
  of a lake file under it;
* an **external URL** (``"/data/imgs"``, ``"s3://bucket/prefix"``, any fsspec
  URL): each datapoint is a *reference* file (``kind="reference"``, its URL,
  size and etag or mtime), named ``.datasources/<name>/<path>`` in the lake.
  No bytes are copied.

A datapoint's fields belong to its datasource, as in DagsHub: two datasources
over the same files keep their fields apart, and the type of a field is fixed
per datasource by its first value (schema v5). Every change is kept
(``ds.as_of(t)``) and is a commit whose records file lets ``reindex`` restore
it. Over a lake prefix, the files' own lake metadata shows too, read-only, as
``lake.<key>`` fields (``ds["lake.ticket"] == "abc"``). Datasources,
datapoints, their fields and values and saved datasets are rows of their own,
written only through commits.

Storage options (credentials) of an external root are this machine's own:
they live in ``<lake>/state/datasources.yaml`` (mode 600), never in the
catalog or the records.

The feature, bottom up: :mod:`.state` (names, per-process state, options),
:mod:`.fetch` (bytes to local paths), :mod:`.scan` (scans and metadata
commits), :mod:`.query` and :mod:`.text` (conditions), :mod:`.results` and
:mod:`.ml` (what a query returns), then this module. Reads go through
:mod:`limnos.catalog.datasources` and :mod:`limnos.catalog.dsquery`; writes
are commits, built with ``lake.new_commit``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import os
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, overload

from ..catalog import values as metavalues
from ..catalog.datasources import (
    DatasetRow,
    SourceInfo,
    current_datapoints,
    datasource_by_id,
    find_datasource,
    live_datasources,
    saved_datasets,
)
from ..catalog.dsquery import count_datapoints, select_datapoints
from ..errors import (
    DatasetNotFound,
    DatasourceNotFound,
    FieldNotFound,
    LimnosError,
    MetadataError,
    PartialResultsWarning,
    QueryError,
    SourceNotFound,
    redact_url,
    require_protocol,
)
from ..names import new_id, validate_name
from .fetch import Fetcher, reference_fetcher, source_fetcher
from .query import BUILTINS, LAKE_PREFIX, Condition, Field, Query, check_fields, describe
from .results import QueryResult
from .scan import ScanReport, frame_updates, write_metadata
from .scan import scan as run_scan
from .state import (
    AUTO_FIELDS,
    REF_PREFIX,
    SourceState,
    check_name,
    join_scan,
    known_fields,
    load_options,
    save_options,
    shared_state,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..core.base import LakeBase


# -------------------------------------------------------------------- roots
def parse_root(root: str | os.PathLike[str]) -> tuple[str, str]:
    """(kind, normalized root) of a datasource root.

    A URL, an absolute path or one starting with ./ ../ ~ is an external folder
    or bucket; anything else is a prefix of the lake ("" for the whole lake).

    Raises:
        SourceNotFound: a local root is not a folder.
        LimnosError: the root holds credentials, or is not a valid lake prefix.
    """
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


# ----------------------------------------------------------------- registry
def _by_id(lake: LakeBase, source_id: str) -> SourceInfo:
    info = datasource_by_id(lake.catalog, source_id)
    if info is None:
        raise DatasourceNotFound(f"no datasource with id {source_id}")
    return info


def get_or_create(lake: LakeBase, name: str, root: str | os.PathLike[str] | None = None, *,
                  storage_options: Mapping[str, Any] | None = None, scan: bool | str = "background") -> Datasource:
    """``lake.datasource(name, root)``: the datasource ``name``, created over ``root`` if new.

    A new datasource is scanned in the background (``scan="background"``),
    before returning (``scan=True``) or not at all (``scan=False``).

    Raises:
        DatasourceNotFound: there is no such datasource and no ``root`` to create it.
        LimnosError: it exists over another root.
        SourceNotFound: an external root cannot be read.
    """
    check_name(name)
    info = find_datasource(lake.catalog, name)
    if storage_options is not None:
        save_options(lake, name, dict(storage_options))
    if info is not None:
        if root is not None and parse_root(root) != (info.kind, info.root):
            raise LimnosError(f"datasource {name!r} exists over {info.root or '(the whole lake)'}; "
                              "pick another name or delete it first (ds.delete_source())")
        return Datasource(lake, shared_state(lake, info))
    if root is None:
        raise DatasourceNotFound(f"no datasource named {name!r}",
                                 hint=f"create it with lake.datasource({name!r}, root) or see lake.datasources()")
    kind, normalized = parse_root(root)
    if kind == "external":
        _check_reachable(lake, name, normalized)
    commit = lake.new_commit("datasource")
    ours = new_id()
    commit.extra.append({"type": "datasource", "id": ours, "name": name, "root": normalized, "kind": kind})
    commit.write()
    info = find_datasource(lake.catalog, name)
    assert info is not None  # we just created it
    ds = Datasource(lake, shared_state(lake, info))
    if info.id != ours:
        # Another process created the same name at the same moment: theirs (the older) wins.
        loser = lake.new_commit("datasource")
        loser.extra.append({"type": "datasource_delete", "datasource_id": ours})
        loser.write()
        return ds
    if scan == "background":
        ds.scan(background=True)
    elif scan:
        ds.scan()
    return ds


def get_by_id(lake: LakeBase, source_id: str, *, name: str | None = None, root: str | os.PathLike[str] | None = None,
              storage_options: Mapping[str, Any] | None = None) -> Datasource:
    """``lake.datasource(id=...)``: the live datasource with this id (DagsHub's ``get_datasource(id=)``).

    Raises:
        DatasourceNotFound: no live datasource has this id.
        LimnosError: ``name`` or ``root`` is given and is not this datasource's.
    """
    if not isinstance(source_id, str):
        raise DatasourceNotFound(f"a datasource id is a str, not {type(source_id).__name__}")
    info = datasource_by_id(lake.catalog, source_id)
    if info is None or info.deleted_at is not None:
        raise DatasourceNotFound(f"no datasource with id {source_id}", hint="see lake.datasources()")
    if name is not None and name != info.name:
        raise LimnosError(f"datasource {source_id} is named {info.name!r}, not {name!r}")
    if root is not None and parse_root(root) != (info.kind, info.root):
        raise LimnosError(f"datasource {info.name!r} is over {info.root or '(the whole lake)'}, not {root}")
    if storage_options is not None:
        save_options(lake, info.name, dict(storage_options))
    return Datasource(lake, shared_state(lake, info))


def _unpickle_view(lake: LakeBase, source_id: str, query: Query, dataset: str | None) -> Datasource:
    """A pickled datasource view in this process: the live datasource with that id, narrowed by the same query.

    Raises:
        DatasourceNotFound: the datasource was deleted since.
    """
    return Datasource(lake, get_by_id(lake, source_id)._shared, query, dataset)


def _check_reachable(lake: LakeBase, name: str, root: str) -> None:
    import fsspec

    require_protocol(root)
    try:
        fs, path = fsspec.core.url_to_fs(root, **load_options(lake, name))
        ok = fs.exists(path)
    except Exception as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SourceNotFound(f"cannot read {redact_url(root)}: {redact_url(detail)}; check the URL and storage_options") from None
    if not ok:
        raise SourceNotFound(f"{redact_url(root)} does not exist; check the URL")


def list_datasources(lake: LakeBase) -> list[Datasource]:
    """``lake.datasources()``: every datasource, by name."""
    seen: dict[str, Datasource] = {}
    for info in live_datasources(lake.catalog):
        seen.setdefault(info.name, Datasource(lake, shared_state(lake, info)))
    return list(seen.values())


@dataclass
class SavedDataset(DatasetRow):
    """A saved query on a datasource (``ds.save_dataset(name)``), optionally pinned to a time.

    Its fields are the catalog's row (name, datasource, datasource_id, query,
    as_of, created_at); it also knows its lake, to load or delete itself.
    """

    _lake: LakeBase | None = field(default=None, repr=False, compare=False)

    def _owner(self) -> LakeBase:
        if self._lake is None:
            raise LimnosError(f"dataset {self.name!r} is not bound to a lake; get it from lake.datasets()")
        return self._lake

    def load(self) -> Datasource:
        """The datasource view with this query (and pinned time) applied."""
        return load_dataset(self._owner(), self.name)

    def delete(self) -> None:
        """Delete the saved dataset (its datasource stays)."""
        commit = self._owner().new_commit("dataset")
        commit.extra.append({"type": "dataset_delete", "name": self.name})
        commit.write()

    def to_dict(self) -> dict[str, Any]:
        """The dataset as JSON-compatible data, its query both readable and as saved."""
        where = Query.from_json(self.query).where
        return {"name": self.name, "datasource": self.datasource, "query": describe(where), "saved_query": self.query,
                "as_of": self.as_of.isoformat() if self.as_of else None, "created_at": self.created_at.isoformat()}


def list_datasets(lake: LakeBase) -> list[SavedDataset]:
    """``lake.datasets()``: every saved dataset, by name."""
    return [SavedDataset(**vars(r), _lake=lake) for r in saved_datasets(lake.catalog)]


def load_dataset(lake: LakeBase, name: str) -> Datasource:
    """``lake.dataset(name)``: the datasource view with the saved query (and pinned time) applied.

    Raises:
        DatasetNotFound: no dataset has that name (close names are suggested).
    """
    datasets = list_datasets(lake)
    found = [d for d in datasets if d.name == name]
    if not found:
        close = difflib.get_close_matches(name, [d.name for d in datasets], n=3)
        hint = f"did you mean {', '.join(map(repr, close))}?" if close else "see lake.datasets()"
        raise DatasetNotFound(f"no dataset named {name!r}", hint=hint, name=name)
    saved = found[0]
    info = _by_id(lake, saved.datasource_id)
    return Datasource(lake, shared_state(lake, info), Query.from_json(saved.query, saved.as_of), dataset=name)


# --------------------------------------------------------------- datasource
class Datasource:
    """A datasource, or a view of it (a query): ``ds[ds["episode"] > 5].all().dataframe``.

    Views share the datasource; ``ds[q]``, ``select``, ``order_by``, ``limit``
    and ``as_of`` return new views and never change ``ds``.
    """

    def __init__(self, lake: LakeBase, shared: SourceState, query: Query | None = None, dataset: str | None = None) -> None:
        """A view of the datasource whose shared state is ``shared``; get one from ``lake.datasource(name)``."""
        self._lake = lake
        self._shared = shared
        self.query = query or Query()
        #: the saved dataset this view was loaded from, if any
        self.dataset = dataset

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the lake (its address), the datasource's id and this view's query; no storage option travels."""
        return (_unpickle_view, (self._lake, self._shared.info.id, self.query, self.dataset))

    # -- identity ----------------------------------------------------------
    @property
    def name(self) -> str:
        """The datasource's name."""
        return self._shared.info.name

    @property
    def id(self) -> str:
        """The datasource's id (a ULID)."""
        return self._shared.info.id

    @property
    def root(self) -> str:
        """Its root: a lake prefix (``""`` for the whole lake), a folder or a URL."""
        return self._shared.info.root

    @property
    def kind(self) -> str:
        """``"lake"`` (a lake prefix) or ``"external"`` (a folder or a URL)."""
        return self._shared.info.kind

    @property
    def info(self) -> SourceInfo:
        """The datasource's row as last read: its times of creation, last complete scan and deletion."""
        return self._shared.info

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
        return source_fetcher(self._lake, self._shared.info)

    def _reload(self) -> SourceInfo:
        self._shared.info = _by_id(self._lake, self.id)
        return self._shared.info

    # -- fields ------------------------------------------------------------
    def _registered(self, refresh: bool = False) -> dict[str, str]:
        return known_fields(self._lake, self._shared, refresh)

    def _types(self, names: Iterable[str] = (), refresh: bool = False) -> dict[str, str]:
        """Field -> type for the fields this datasource has (and, over a lake prefix, ``lake.<key>`` of any lake key)."""
        names = list(names)
        types = {**BUILTINS, **self._registered(refresh)}
        missing = [n for n in names if n not in types]
        lake_keys = [n[len(LAKE_PREFIX):] for n in missing if n.startswith(LAKE_PREFIX)]
        if lake_keys and self.kind == "lake":
            types.update({LAKE_PREFIX + k: v for k, v in self._lake.catalog.key_types(lake_keys).items()})
            missing = [n for n in missing if n not in types]
        if missing and not refresh:
            return self._types(names, refresh=True)
        plain = self._lake.catalog.key_types(missing) if missing and self.kind == "lake" else {}
        if plain:
            key = sorted(plain)[0]
            raise FieldNotFound(f"datasource {self.name!r} has no field {key!r}; its files' lake metadata "
                                f"{key!r} is the read-only field {LAKE_PREFIX + key!r}")
        check_fields(names, list(types), self.name)
        return types

    @property
    def fields(self) -> dict[str, str]:
        """Every field of the datasource and its type: path, size, then its own fields (not the ``lake.`` ones)."""
        return {**BUILTINS, **self._registered(refresh=True)}

    # -- views -------------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        """``ds["f"]``: a :class:`Field`; ``ds[condition]``: a filtered view; ``ds[["a", "b"]]``: ``select``."""
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
        """A view of at most ``n`` datapoints (a smaller limit already set stays)."""
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
        """True while a background scan of this datasource runs in this process."""
        return self._shared.scanning

    def _partial(self) -> bool:
        """Whether results now may miss datapoints (a scan runs, failed or never ended); warns if so."""
        state = self._shared
        if state.scan_error is not None and not state.scanning:
            error, state.scan_error = state.scan_error, None
            warnings.warn(PartialResultsWarning(f"the background scan of {self.name!r} failed ({error}); "
                                                "results may be partial, run ds.scan() again"), stacklevel=4)
            return True
        info = state.info if state.scanning else self._reload()
        if state.scanning or info.scanned_at is None:
            warnings.warn(PartialResultsWarning(f"datasource {self.name!r} is still being scanned; results may be "
                                                "partial (ds.wait() waits for the scan)"), stacklevel=4)
            return True
        return False

    def _run(self, query: Query) -> QueryResult:
        types = self._types(query.fields())
        partial = self._partial()
        rows, found = select_datapoints(self._lake.catalog, query, self.id, types, lake_fields=self.kind == "lake")
        for key, vtype in found.items():
            types.setdefault(key, vtype)
        return QueryResult(self, rows, types, query.select, partial, self._fetcher())

    def all(self) -> QueryResult:
        """Every datapoint the view matches (respecting its limit)."""
        return self._run(self.query)

    def head(self, n: int = 100) -> QueryResult:
        """The first ``n`` datapoints the view matches."""
        return self._run(self.limit(n).query)

    def count(self) -> int:
        """How many datapoints the view matches (respecting its limit), in one COUNT query."""
        types = self._types(self.query.fields())
        n = count_datapoints(self._lake.catalog, self.query, self.id, types)
        return n if self.query.limit is None else min(n, self.query.limit)

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.all())

    # -- scanning ----------------------------------------------------------
    @overload
    def scan(self, background: Literal[False] = False) -> ScanReport: ...

    @overload
    def scan(self, background: Literal[True]) -> None: ...

    @overload
    def scan(self, background: bool) -> ScanReport | None: ...

    def scan(self, background: bool = False) -> ScanReport | None:
        """Scan the root: add new files, follow changed ones, end vanished ones. Incremental.

        ``background=True`` scans in a thread and returns None at once; queries
        meanwhile warn that their results may be partial. Otherwise waits for
        any running scan first, then scans and returns the report.
        """
        state = self._shared
        if background:
            with state.lock:
                if state.scanning:
                    return None
                state.stop.clear()
                state.scan_error = None
                lake = self._lake

                def work() -> None:
                    try:
                        run_scan(lake, state, state.stop)
                    except BaseException as exc:
                        state.scan_error = exc

                state.thread = threading.Thread(target=work, name=f"limnos-scan-{self.name}", daemon=True)
                state.thread.start()
            return None
        self.wait(raise_error=False)
        return run_scan(self._lake, state, None)

    def wait(self, raise_error: bool = True) -> None:
        """Wait for a background scan; raise its error, if it failed (unless ``raise_error=False``)."""
        join_scan(self._shared)
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
        updates = frame_updates(df, path_column, self._registered(refresh=True))
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

        Raises:
            LimnosError: a dataset has that name already (and ``overwrite`` is not set).
        """
        check_name(name, "dataset")
        if not overwrite and any(d.name == name for d in list_datasets(self._lake)):
            raise LimnosError(f"a dataset named {name!r} exists; pass overwrite=True to replace it")
        when = self.query.as_of or (metavalues.to_utc(dt.datetime.now(dt.timezone.utc)) if pin else None)
        commit = self._lake.new_commit("dataset")
        commit.extra.append({"type": "dataset", "name": name, "datasource_id": self.id,
                             "query": self.query.to_json(), "as_of": when.isoformat() if when else None})
        commit.write()
        return next(d for d in list_datasets(self._lake) if d.name == name)

    def visualize(self, **options: Any) -> Any:
        """Open this view in ``limnos ui``'s gallery (its query and ``as_of`` kept): DagsHub's ``ds.visualize()``.

        Returns the server's handle (``.url``, ``.stop()``; an iframe in a notebook); ``options`` as for
        ``lake.ui()``. A view whose query has no text form (a saved dataset's, say) opens unfiltered.
        """
        from ..web import datasource_path, launch

        return launch(self._lake, datasource_path(self), **options)

    def delete_source(self) -> None:
        """Delete the datasource, its saved datasets and (for an external root) its references."""
        self._shared.stop.set()
        self.wait(raise_error=False)
        catalog = self._lake.catalog
        with self._shared.lock:
            commit = self._lake.new_commit("datasource")
            current = list(current_datapoints(catalog, self.id).values())
            datasets = [d.name for d in saved_datasets(catalog, self.id)]
            commit.extra.extend([{"type": "datapoint_end", "id": c.id} for c in current])
            if self.kind == "external":
                commit.extra.extend([{"type": "tombstone", "file_id": c.file_id, "deleted_at": commit.created_at}
                                     for c in current])
            commit.extra.extend([{"type": "dataset_delete", "name": n} for n in datasets])
            commit.extra.append({"type": "datasource_delete", "datasource_id": self.id})
            commit.write()
        save_options(self._lake, self.name, None)
        self._reload()


class MetadataContext:
    """``ds.metadata_context()``: updates collected here are committed together on exit."""

    def __init__(self, datasource: Datasource) -> None:
        """An empty batch of updates to ``datasource``."""
        self._ds = datasource
        self._updates: dict[str, dict[str, Any]] = {}
        self._deletes: dict[str, set[str]] = {}

    def update_metadata(self, paths: str | Sequence[str], metadata: Mapping[str, Any]) -> None:
        """Set ``metadata`` on one path or several, relative to the datasource's root.

        Raises:
            MetadataError: a field name or value is invalid (raised here, not at commit).
        """
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
        """Remove ``keys`` from one path or several (cancelling updates of them collected so far)."""
        keys = [keys] if isinstance(keys, str) else list(keys)
        for path in [paths] if isinstance(paths, str) else list(paths):
            self._deletes.setdefault(path, set()).update(keys)
            for key in keys:
                self._updates.get(path, {}).pop(key, None)

    def commit(self) -> None:
        """Write what was collected in one commit (nothing, if nothing was), and start afresh."""
        if self._updates or self._deletes:
            write_metadata(self._ds._lake, self._ds._shared, self._updates, self._deletes)
            self._updates, self._deletes = {}, {}


def _check_field_name(key: Any) -> None:
    metavalues.validate_key(key)
    if key in BUILTINS:
        raise MetadataError(f"{key!r} is a built-in field of every datapoint; pick another name, such as '{key}_'")
    if key.startswith(LAKE_PREFIX):
        raise MetadataError(f"{key!r} names the lake metadata of a datapoint's file, which is read-only here; "
                            f"set it with lake.set_metadata, or pick a field name not starting with {LAKE_PREFIX!r}")


__all__ = ["AUTO_FIELDS", "Datasource", "MetadataContext", "SavedDataset", "SourceInfo", "get_by_id", "get_or_create",
           "list_datasets", "list_datasources", "load_dataset", "load_options", "parse_root", "reference_fetcher"]
