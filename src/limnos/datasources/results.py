"""What a datasource query returns: datapoints, tables, blobs and downloads.

A :class:`QueryResult` holds the datapoints of one query (their paths, sizes
and field values) and fetches bytes only when asked: ``dp.local_path()``,
``dp.get_blob(field)``, ``result.get_blob_fields(...)`` or
``result.download_files()``, through a :class:`~limnos.datasources.fetch.Fetcher`
(lake objects from the cache or a verified download; references from their
folder or this machine's reference cache). Fetchers pickle, so torch
DataLoader workers use them too (:mod:`limnos.datasources.ml`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from ..catalog.dsquery import DatapointRow
from ..errors import FieldNotFound, require_extra
from ..store import hashing
from .fetch import Fetcher, safe_target

if TYPE_CHECKING:
    import pandas as pd

    from ..core.files import File
    from .source import Datasource

_PANDAS_TYPES = {"int": "Int64", "float": "float64", "bool": "boolean"}


# ---------------------------------------------------------------- datapoints
class Datapoint:
    """One file of a datasource with its fields: ``dp.path``, ``dp["field"]``, ``dp.local_path()``."""

    __slots__ = (
        "_blobs",
        "_result",
        "datapoint_id",
        "file_id",
        "fingerprint",
        "hash",
        "kind",
        "metadata",
        "path",
        "size",
        "uri",
    )

    def __init__(self, result: QueryResult, row: DatapointRow) -> None:
        """The datapoint ``row`` of ``result``."""
        self._result = result
        self.path: str = row.path
        self.datapoint_id: str = row.dp_id
        self.file_id: str = row.file_id
        self.size: int = row.size
        self.kind: str = row.kind
        self.hash: str | None = row.hash
        self.uri: str | None = row.uri
        self.fingerprint: str | None = row.fingerprint
        #: field -> value; a blob is its object hash until fetched
        self.metadata = row.metadata
        self._blobs: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<Datapoint {self.path} {len(self.metadata)} fields>"

    def __getitem__(self, field: str) -> Any:
        if field == "path":
            return self.path
        if field == "size":
            return self.size
        if field in self.metadata:
            return self.metadata[field]
        if field in self._result._types:
            return None  # a field of the datasource that this datapoint has no value for
        raise FieldNotFound(f"datapoint {self.path!r} has no field {field!r}; its fields are: "
                            f"{', '.join(['path', 'size', *sorted(self.metadata)])}")

    def get(self, field: str, default: Any = None) -> Any:
        """The field's value, or ``default`` when the datapoint has none."""
        value = self.metadata.get(field, default) if field not in ("path", "size") else self[field]
        return default if value is None else value

    def to_dict(self) -> dict[str, Any]:
        """Path, size and every field value."""
        return {"path": self.path, "size": self.size, **self.metadata}

    @property
    def file(self) -> File:
        """The lake file behind this datapoint (an object, or a reference)."""
        return self._result._datasource._lake.resolve(self.file_id)

    def local_path(self) -> str:
        """A local path to the bytes, downloaded first if needed (read-only for lake objects)."""
        return self._result._fetcher.datapoint_path(self.path, self.kind, self.hash, self.uri, self.size, self.fingerprint)

    def open(self) -> IO[bytes]:
        """Open the bytes for reading (fetched first if needed)."""
        return open(self.local_path(), "rb")

    def read_bytes(self) -> bytes:
        """The bytes (fetched first if needed)."""
        with self.open() as f:
            return f.read()

    def get_blob(self, field: str, load_into_memory: bool = False) -> bytes:
        """A blob field's bytes. Afterwards ``dp[field]`` is the blob's local path (or the bytes, with
        ``load_into_memory=True``), as in DagsHub's client."""
        path = self._blob_path(field)
        with open(path, "rb") as f:
            data = f.read()
        self.metadata[field] = data if load_into_memory else path
        return data

    def _blob_path(self, field: str) -> str:
        if self._result._types.get(field) != "blob":
            kind = self._result._types.get(field)
            raise FieldNotFound(f"{field!r} is not a blob field" + (f" (it holds {kind} values)" if kind else ""))
        digest = self._blobs.get(field) or self.metadata.get(field)
        if not digest:
            raise FieldNotFound(f"datapoint {self.path!r} has no value for blob field {field!r}")
        self._blobs[field] = digest
        return self._result._fetcher.object_path(digest)


# ------------------------------------------------------------------- results
@dataclass
class DownloadReport:
    """What ``download_files`` did; it is also the target folder (``os.fspath(report)``)."""

    target_dir: str
    downloaded: int = 0
    skipped: int = 0
    bytes: int = 0

    def __fspath__(self) -> str:
        return self.target_dir

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-compatible data."""
        return {"target_dir": self.target_dir, "downloaded": self.downloaded, "skipped": self.skipped, "bytes": self.bytes}


class QueryResult:
    """The datapoints a query matched, in order. Iterate it, or take ``.dataframe``."""

    def __init__(self, datasource: Datasource, rows: Sequence[DatapointRow], types: dict[str, str],
                 fields: Sequence[str] | None, partial: bool, fetcher: Fetcher) -> None:
        """The ``rows`` a query on ``datasource`` matched; ``types`` gives each field's type."""
        self._datasource = datasource
        self._types = dict(types)
        self._fields = list(fields) if fields is not None else None
        #: True when the datasource was still being scanned, so datapoints may be missing
        self.partial = partial
        self._fetcher = fetcher
        self._rows = list(rows)
        self.datapoints = [Datapoint(self, row) for row in rows]
        for dp in self.datapoints:
            dp._blobs = {k: v for k, v in dp.metadata.items() if self._types.get(k) == "blob" and isinstance(v, str)}

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the datasource view (lake address, id, query) and the matched rows: no query runs again."""
        return (_unpickle_result, (self._datasource, self._rows, self._types, self._fields, self.partial))

    def __iter__(self) -> Iterator[Datapoint]:
        return iter(self.datapoints)

    def __len__(self) -> int:
        return len(self.datapoints)

    def __getitem__(self, index: int) -> Datapoint:
        return self.datapoints[index]

    def __bool__(self) -> bool:
        return bool(self.datapoints)

    def __repr__(self) -> str:
        more = " (partial: still scanning)" if self.partial else ""
        return f"<QueryResult {self._datasource.name}: {len(self)} datapoints{more}>"

    def _repr_html_(self) -> str:
        """The datapoints as a table in a notebook, with a thumbnail for each image datapoint shown.

        Thumbnails come through the datasource's fetcher (verified lake objects, or the
        reference's folder or cache), for the rows shown only; a datapoint whose bytes
        cannot be had shows without one.
        """
        from .. import render_html as h
        from ..errors import LimnosError

        shown = self.datapoints[: h.MAX_ROWS]
        thumbs = []
        for dp in shown:
            thumb = ""
            if h.looks_like_image(dp.path) and dp.size <= h.MAX_THUMB_SOURCE:
                try:
                    thumb = h.thumbnail(dp.local_path(), alt=dp.path)
                except (LimnosError, OSError):
                    thumb = ""
            thumbs.append(thumb)
        with_thumbs = any(thumbs)
        names = self.field_names()
        rows = []
        for dp, thumb in zip(shown, thumbs, strict=True):
            row = [h.raw_cell(thumb)] if with_thumbs else []
            row += [h.cell(dp[n] if n in ("path", "size") else dp.metadata.get(n)) for n in names]
            rows.append(row)
        more = " (partial: still scanning)" if self.partial else ""
        n = len(self.datapoints)
        return h.card(f"QueryResult of {self._datasource.name}", f"{n} datapoint{'' if n == 1 else 's'}{more}",
                      h.table(([""] if with_thumbs else []) + names, rows, n))

    @property
    def datasource(self) -> Datasource:
        """The datasource (view) the query ran on."""
        return self._datasource

    def field_names(self) -> list[str]:
        """The columns of ``dataframe``: path, then the fields asked for (or all of them)."""
        if self._fields is not None:
            return ["path", *[f for f in self._fields if f != "path"]]
        seen: dict[str, None] = {}
        for dp in self.datapoints:
            seen.update(dict.fromkeys(dp.metadata))
        known = [k for k in self._types if k not in ("path", "size")]
        return ["path", "size", *sorted(set(seen) | set(known))]

    def to_dicts(self) -> list[dict[str, Any]]:
        """One dict per datapoint, with the keys of :meth:`field_names` (None for a missing value)."""
        names = self.field_names()
        return [{n: dp[n] if n in ("path", "size") else dp.metadata.get(n) for n in names} for dp in self.datapoints]

    @property
    def dataframe(self) -> pd.DataFrame:
        """One row per datapoint: path, size, then each field, typed (nullable ints and bools).

        Raises:
            MissingExtra: pandas is not installed (``pip install 'limnos[pandas]'``).
        """
        pd = require_extra("pandas", "pandas", purpose="a DataFrame")

        names = self.field_names()
        frame = pd.DataFrame.from_records(self.to_dicts(), columns=names)
        for name in names:
            kind = "int" if name == "size" else "str" if name == "path" else self._types.get(name)
            if kind in _PANDAS_TYPES:
                frame[name] = frame[name].astype(_PANDAS_TYPES[kind])
            elif kind == "datetime":
                frame[name] = pd.to_datetime(frame[name], utc=True)
        if self._fields is None:
            frame["datapoint_id"] = [dp.datapoint_id for dp in self.datapoints]
            frame["uri"] = [dp.uri or self._object_uri(dp) for dp in self.datapoints]
        return frame

    def _object_uri(self, dp: Datapoint) -> str | None:
        return self._datasource._lake.object_url(dp.hash) if dp.hash else None

    def to_polars(self) -> Any:
        """The dataframe as a polars DataFrame (pip install polars)."""
        try:
            import polars as pl
        except ImportError:
            from ..errors import MissingExtra

            raise MissingExtra("polars is not installed; run: pip install polars") from None

        return pl.from_pandas(self.dataframe)

    # -- blobs -------------------------------------------------------------
    def get_blob_fields(self, *fields: str, load_into_memory: bool = False, jobs: int | None = None) -> QueryResult:
        """Fetch blob fields of every datapoint in parallel; afterwards each value is the blob's local
        path (or its bytes, with ``load_into_memory``). Returns the result, for ``.dataframe``."""
        for name in fields:
            if self._types.get(name) != "blob":
                raise FieldNotFound(f"{name!r} is not a blob field of datasource {self._datasource.name!r}")
        todo = [(dp, f) for dp in self.datapoints for f in fields if dp._blobs.get(f) or dp.metadata.get(f)]
        digests = sorted({dp._blobs.get(f) or dp.metadata[f] for dp, f in todo})
        from ..store.transfer import default_jobs

        with ThreadPoolExecutor(max(1, min(jobs or default_jobs(), len(digests) or 1))) as pool:
            paths = dict(zip(digests, pool.map(self._fetcher.object_path, digests), strict=True))
        for dp, name in todo:
            digest = dp._blobs.get(name) or dp.metadata[name]
            dp._blobs[name] = digest
            if load_into_memory:
                with open(paths[digest], "rb") as f:
                    dp.metadata[name] = f.read()
            else:
                dp.metadata[name] = paths[digest]
        return self

    # -- downloads ---------------------------------------------------------
    def download_files(self, target_dir: str | os.PathLike[str] | None = None, keep_source_prefix: bool = True,
                       redownload: bool = False, jobs: int | None = None) -> DownloadReport:
        """Download every datapoint's file under ``target_dir``, in parallel.

        Paths keep the datasource's source prefix (its lake prefix, or the last
        folder of its URL) unless ``keep_source_prefix=False``. A file already
        there with the right size (and, for lake files, hash) is skipped unless
        ``redownload``. A path that would land outside ``target_dir`` (``..``,
        an absolute path, a symlink out) is refused before anything is written.
        """
        ds = self._datasource
        if target_dir is None:
            import platformdirs

            target_dir = os.path.join(platformdirs.user_data_dir("limnos"), "datasets", ds.name)
        root = os.path.realpath(os.fspath(target_dir))
        prefix = ds.source_prefix if keep_source_prefix else ""
        plan = [(dp, safe_target(root, f"{prefix}/{dp.path}" if prefix else dp.path)) for dp in self.datapoints]
        os.makedirs(root, exist_ok=True)
        report = DownloadReport(root)
        lock = threading.Lock()

        def one(item: tuple[Datapoint, str]) -> None:
            dp, dest = item
            if not redownload and _is_current(dp, dest):
                with lock:
                    report.skipped += 1
                return
            if os.path.lexists(dest):
                os.unlink(dest)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            self._fetcher.datapoint_path(dp.path, dp.kind, dp.hash, dp.uri, dp.size, dp.fingerprint, dest=dest)
            with lock:
                report.downloaded += 1
                report.bytes += dp.size

        from ..progress import transfer_progress
        from ..store.transfer import default_jobs

        with transfer_progress(len(plan), sum(dp.size for dp, _ in plan), "downloading") as advance:
            def run(item: tuple[Datapoint, str]) -> None:
                one(item)
                advance(1, item[0].size)

            with ThreadPoolExecutor(max(1, min(jobs or default_jobs(), len(plan) or 1))) as pool:
                list(pool.map(run, plan))
        return report

    # -- machine learning --------------------------------------------------
    def as_ml_dataset(self, flavor: str = "torch", **kwargs: Any) -> Any:
        """A torch Dataset or a ``tf.data.Dataset`` (``flavor="tensorflow"``) over these datapoints
        (see :mod:`limnos.datasources.ml`)."""
        from .ml import as_dataset

        return as_dataset(self, flavor, **kwargs)

    def as_ml_dataloader(self, flavor_or_dataset: Any = "torch", **kwargs: Any) -> Any:
        """A torch DataLoader, or a batched ``tf.data.Dataset``; dataset options (metadata_columns, strategy,
        tensorizers, savedir) and loader options (batch_size, num_workers...) may be mixed."""
        from .ml import as_dataloader

        return as_dataloader(self, flavor_or_dataset, **kwargs)

    def as_hf_dataset(self, metadata_columns: Sequence[str] | None = None, savedir: str | os.PathLike[str] | None = None,
                      jobs: int | None = None, embed: bool = False) -> Any:
        """A Hugging Face ``datasets.Dataset``: path, an ``image`` column (or ``file``), and a typed column per field
        (see :mod:`limnos.datasources.ml_hf`)."""
        from .ml import as_hf_dataset

        return as_hf_dataset(self, metadata_columns=metadata_columns, savedir=savedir, jobs=jobs, embed=embed)


def _is_current(dp: Datapoint, dest: str) -> bool:
    try:
        if os.path.islink(dest) or os.path.getsize(dest) != dp.size:
            return False
    except OSError:
        return False
    if dp.kind == "reference" or not dp.hash:
        return True  # a reference has no hash of ours; its size was checked
    return hashing.hash_file(dest)[0] == dp.hash


def _unpickle_result(datasource: Datasource, rows: Sequence[DatapointRow], types: dict[str, str],
                     fields: Sequence[str] | None, partial: bool) -> QueryResult:
    """A pickled :class:`QueryResult` in this process: the same datapoints, fetched with this process's lake."""
    return QueryResult(datasource, rows, types, fields, partial, datasource._fetcher())


__all__ = ["Datapoint", "DownloadReport", "QueryResult"]
