"""Folios: a bundle of metadata, included items and references to data left where it is.

datafolio's model, on limnos::

    folio = limnos.Folio(metadata={"experiment": "rf-01", "params": {"depth": 8}})
    folio.reference_table("train", "s3://lake/features.parquet", num_rows=10_000_000)
    folio.add_table("results", results_df).add_model("clf", model).add_artifact("roc", "roc.png", category="plots")
    folio.save("s3://bucket/rf-01.tar")            # a portable archive (see archive.py)
    loaded = limnos.Folio.load("s3://bucket/rf-01.tar")   # reads the manifest only
    loaded.get_table("results")                     # now reads that item's bytes, and only those

In a lake, ``lake.save_folio("experiments/rf-01", folio)`` stores the items
as lake files and the folio as a file holding its manifest (see
:mod:`limnos.folio.in_lake`); ``lake.get(name).folio()`` loads it back.

Items are written to bytes when they are added, so a later change to the
DataFrame or model does not change the folio, and every item has its hash and
size from the start. Models are the one item whose loading can run code
(pickle): one from a folio read back from storage is loaded only with
``trusted=True`` (joblib), or through skops' type checks (skops).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import (
    FolioError,
    FolioItemExists,
    FolioItemIncluded,
    FolioItemNotFound,
    FolioTypeError,
    RemoteError,
    SourceNotFound,
    redact_url,
    require_extra,
)
from ..steps.formats import json_problem
from ..store import hashing
from ..store.links import place
from ..store.objects import secret_values
from .archive import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ArchiveReader,
    check_member_name,
    current_umask,
    fs_options,
    put,
    validate_item_name,
    write_archive,
)
from .cache import item_path as cache_item_path
from .cache import lookup as cache_lookup
from .cache import prune_cache, reserve, seal
from .cache import store as cache_store
from .items import (
    MODEL_FORMATS,
    TABLE_FORMATS,
    FolioMetadata,
    Item,
    check_code,
    drop_secrets,
    importable,
    item_extension,
    item_inputs,
    now_iso,
    plain,
    skops_available,
)
from .models import load_joblib, load_skops
from .models import require as _require

if TYPE_CHECKING:
    import pandas as pd

    from ..core.base import LakeBase
    from ..core.files import File

class Folio:
    """A bundle of metadata, tables, models, arrays, JSON, artifacts, references and other folios."""

    def __init__(self, metadata: Mapping[str, Any] | None = None) -> None:
        if metadata is not None and not isinstance(metadata, Mapping):
            raise FolioError(f"folio metadata is a dict, not {type(metadata).__name__}")
        self._metadata = FolioMetadata(metadata or {})
        stamp = now_iso()
        dict.setdefault(self._metadata, "created_at", stamp)
        dict.setdefault(self._metadata, "updated_at", stamp)
        self._items: dict[str, Item] = {}
        self._workdir: str | None = None
        self._counter = itertools.count()
        self._reader: ArchiveReader | None = None
        self._lake: LakeBase | None = None  # set for a folio read from a lake: its items are lake files
        self._trusted = True  # a folio built here holds only what this process put in it
        #: where the folio was loaded from (a URL or a lake ref), None if built here
        self.source: str | None = None
        #: names of the items whose bytes were read from the archive or lake so far
        self.extracted: list[str] = []

    # ------------------------------------------------------------- basics
    @property
    def metadata(self) -> dict[str, Any]:
        """The folio's metadata (a dict you may change; it must be JSON when saved), with ``created_at``/``updated_at``."""
        return self._metadata

    @property
    def created_at(self) -> str:
        """When the folio was made (ISO 8601, UTC): ``metadata["created_at"]``."""
        return str(self._metadata.get("created_at"))

    @property
    def updated_at(self) -> str:
        """When the folio's metadata or items last changed (ISO 8601, UTC): ``metadata["updated_at"]``."""
        return str(self._metadata.get("updated_at"))

    @property
    def bytes_read(self) -> int:
        """Bytes read from the archive so far (the manifest, then the items used)."""
        return self._reader.bytes_read if self._reader else 0

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        shown = list(self._items.values())[:8]
        items = ", ".join(f"{i.name} ({i.type})" for i in shown) + (", ..." if len(self._items) > len(shown) else "")
        where = f" from {redact_url(self.source)}" if self.source else ""
        count = f"{len(self._items)} item{'' if len(self._items) == 1 else 's'}"
        return f"<Folio{where}: {count}{': ' + items if items else ''}>"

    def close(self) -> None:
        """Delete this folio's local files (done anyway when it is garbage-collected).

        A loaded folio can still read its items afterwards (they are extracted
        again); the items of a folio built here and not saved are gone.
        """
        if self._reader is not None:
            self._reader.close()
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        for item in self._items.values():
            if item.member or item.file_id:
                item.local = None

    def _dir(self) -> str:
        if self._workdir is None or not os.path.isdir(self._workdir):
            self._workdir = tempfile.mkdtemp(prefix="limnos-folio-")
            weakref.finalize(self, shutil.rmtree, self._workdir, True)
        return self._workdir

    # ------------------------------------------------------------- adding
    def _start(self, name: str, overwrite: bool) -> str:
        validate_item_name(name)
        if name in self._items and not overwrite:
            raise FolioItemExists(f"the folio already has an item {name!r} ({self._items[name].type}); "
                                  "pass overwrite=True to replace it")
        return name

    def _path_for(self, name: str, ext: str) -> str:
        # A fresh file per add: the item it replaces keeps its bytes until the new ones are complete.
        return os.path.join(self._dir(), f"new-{next(self._counter)}-{name}{ext}")

    def _put(self, item: Item, path: str | None) -> Folio:
        if path is not None:
            item.hash, item.size = hashing.hash_file(path)
            item.local, item.trusted = path, True
        old = self._items.get(item.name)
        stamp = now_iso()
        item.info["created_at"] = old.info.get("created_at", stamp) if old is not None else stamp
        item.info["updated_at"] = stamp
        self._metadata._touch()
        old_path = old.local if old is not None else None
        if old_path and self._workdir and old_path.startswith(self._workdir + os.sep) and os.path.exists(old_path):
            os.unlink(old_path)  # the replaced item's bytes, written by this folio
        self._items.pop(item.name, None)  # a replaced item moves to the end, like a new one
        self._items[item.name] = item
        return self

    def add_table(self, name: str, data: Any, description: str | None = None, inputs: Any = None,
                  overwrite: bool = False, code: str | None = None) -> Folio:
        """Include a pandas or polars DataFrame (or a pyarrow Table), stored as parquet.

        Its row and column counts and column dtypes are recorded; ``code`` is
        the code that made it (kept as text, never run).

        Raises:
            FolioTypeError: ``data`` is not a DataFrame or Table (a TypeError).
        """
        self._start(name, overwrite)
        module = type(data).__module__.split(".")[0]
        kind = (module, type(data).__name__)
        if kind not in (("pandas", "DataFrame"), ("polars", "DataFrame"), ("pyarrow", "Table")):
            raise FolioTypeError(f"add_table takes a pandas or polars DataFrame or a pyarrow Table, not "
                                 f"{type(data).__module__}.{type(data).__name__}")
        check_code(code)
        path = self._path_for(name, ".parquet")
        if module == "pandas":
            require_extra("pyarrow", "pandas", purpose=f"table {name!r} as parquet")
            data.to_parquet(path)
            library = "pandas"
        elif module == "polars":
            data.write_parquet(path)
            library = "polars"
        else:
            import pyarrow.parquet as pq

            pq.write_table(data, path)
            library = "pyarrow"
        if library == "pyarrow":
            columns = list(data.column_names)
            dtypes = {f.name: str(f.type) for f in data.schema}
        else:
            columns = [str(c) for c in data.columns]
            dtypes = {str(c): str(t) for c, t in zip(data.columns, data.dtypes, strict=True)}
        info = {"library": library, "num_rows": int(len(data) if library != "pyarrow" else data.num_rows),
                "num_cols": len(columns), "columns": columns, "dtypes": dtypes, "code": code}
        item = Item(name, "table", "parquet", description=description, inputs=item_inputs(inputs), info=info)
        return self._put(item, path)

    def reference_table(self, name: str, path: str | os.PathLike[str] | File, table_format: str = "parquet",
                        num_rows: int | None = None, description: str | None = None, inputs: Any = None,
                        storage_options: Mapping[str, Any] | None = None, overwrite: bool = False,
                        version: int | str | None = None, code: str | None = None) -> Folio:
        """Point at a table where it is (any fsspec URL, a local path, or a lake File); nothing is copied.

        ``storage_options`` (fsspec's, such as an endpoint) are used to read it;
        credentials among them are kept in memory only, never saved in the folio.
        ``version`` records which version of the data is meant (a delta table
        is read at that version); ``code`` is the code that made it (text).
        """
        from ..core.files import File

        self._start(name, overwrite)
        if table_format not in TABLE_FORMATS:
            raise FolioError(f"table_format must be one of {', '.join(TABLE_FORMATS)}, not {table_format!r}")
        if num_rows is not None and (not isinstance(num_rows, int) or num_rows < 0):
            raise FolioError(f"num_rows is a count of rows, not {num_rows!r}")
        if version is not None and (isinstance(version, bool) or not isinstance(version, (int, str))):
            raise FolioTypeError(f"version is an int or a str, not {type(version).__name__}")
        check_code(code)
        options = dict(storage_options or {})
        secrets = set(secret_values(options))
        info: dict[str, Any] = {"num_rows": num_rows, "version": version, "code": code}
        item = Item(name, "reference", table_format, description=description, inputs=item_inputs(inputs), options=options)
        if isinstance(path, File):
            item.ref_file, item.hash, item.size = path, path.hash, path.size
            info["path"] = path.uri
            info["lake"] = {"id": path.id, "name": path.name, "version": path.version, "hash": path.hash}
        else:
            text = os.fspath(path)
            info["path"] = text if "://" in text else os.path.abspath(text)
            kept = drop_secrets(options, secrets)
            if kept:
                info["storage_options"] = kept
        item.info = info
        return self._put(item, None)

    def add_model(self, name: str, model: Any, description: str | None = None, inputs: Any = None,
                  format: str | None = None, overwrite: bool = False,
                  hyperparameters: Mapping[str, Any] | None = None, code: str | None = None) -> Folio:
        """Include a trained model: skops for scikit-learn models when skops is installed, else joblib.

        ``hyperparameters`` (a JSON dict) and ``code`` (text) are recorded with it.
        """
        self._start(name, overwrite)
        check_code(code)
        if hyperparameters is not None:
            if not isinstance(hyperparameters, Mapping):
                raise FolioTypeError(f"hyperparameters is a dict, not {type(hyperparameters).__name__}")
            problem = json_problem(dict(hyperparameters))
            if problem:
                raise FolioError(f"hyperparameters of {name!r} must be JSON: {problem}")
        if format is None:
            is_sklearn = type(model).__module__.split(".")[0] == "sklearn"
            format = "skops" if is_sklearn and skops_available() else "joblib"
        if format not in MODEL_FORMATS:
            raise FolioError(f"model format must be one of {', '.join(MODEL_FORMATS)}, not {format!r}")
        path = self._path_for(name, item_extension(format))
        if format == "joblib":
            _require("joblib", "add_model").dump(model, path)
        else:
            _require("skops.io", "add_model(format='skops')").dump(model, path)
        cls = type(model)
        item = Item(name, "model", format, description=description, inputs=item_inputs(inputs),
                     info={"class": f"{cls.__module__}.{cls.__qualname__}", "code": code,
                           "hyperparameters": dict(hyperparameters) if hyperparameters is not None else None})
        return self._put(item, path)

    def add_array(self, name: str, array: Any, description: str | None = None, inputs: Any = None,
                  overwrite: bool = False) -> Folio:
        """Include a numpy array (.npy, never pickled: object arrays are refused)."""
        import numpy as np

        self._start(name, overwrite)
        value = np.asarray(array)
        if value.dtype.hasobject:
            raise FolioError(f"array {name!r} holds Python objects, which .npy can only pickle; use a numeric or "
                             "str dtype, add_json, or add_model")
        path = self._path_for(name, ".npy")
        with open(path, "wb") as f:
            np.save(f, value, allow_pickle=False)
        item = Item(name, "array", "npy", description=description, inputs=item_inputs(inputs),
                     info={"dtype": str(value.dtype), "shape": list(value.shape)})
        return self._put(item, path)

    def add_json(self, name: str, data: Any, description: str | None = None, inputs: Any = None,
                 overwrite: bool = False) -> Folio:
        """Include JSON data (dicts with str keys, lists, str, numbers, bool, None)."""
        self._start(name, overwrite)
        problem = json_problem(data)
        if problem:
            raise FolioError(f"add_json({name!r}): {problem}, which JSON cannot hold; convert it first")
        path = self._path_for(name, ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, allow_nan=True)
        return self._put(Item(name, "json", "json", description=description, inputs=item_inputs(inputs)), path)

    def add_artifact(self, name: str, path: str | os.PathLike[str], category: str | None = None,
                     description: str | None = None, inputs: Any = None, overwrite: bool = False) -> Folio:
        """Include a file (a plot, a config, a report); its bytes are copied now."""
        self._start(name, overwrite)
        src = os.fspath(path)
        if not os.path.isfile(src):
            raise SourceNotFound(f"{src} is not a file; check the path")
        suffix = os.path.splitext(src)[1]
        suffix = suffix if len(suffix) <= 16 and suffix[1:].replace(".", "").isalnum() else ""
        dest = self._path_for(name, suffix)
        place(src, dest, "copy", readonly=False)
        item = Item(name, "artifact", "file", description=description, inputs=item_inputs(inputs),
                     info={"category": category, "filename": os.path.basename(src), "suffix": suffix})
        return self._put(item, dest)

    def add_folio(self, name: str, folio: Folio, description: str | None = None, overwrite: bool = False) -> Folio:
        """Include another folio whole (as an uncompressed archive inside this one)."""
        self._start(name, overwrite)
        if not isinstance(folio, Folio):
            raise FolioError(f"add_folio takes a Folio, not {type(folio).__name__}")
        if folio is self:
            raise FolioError("a folio cannot contain itself")
        path = self._path_for(name, ".tar")
        folio.save(path)
        item = Item(name, "folio", "tar", description=description,
                     info={"items": len(folio), "metadata": folio.metadata})
        return self._put(item, path)

    def remove(self, name: str) -> Folio:
        """Drop an item from the folio; returns the folio, for chaining.

        Raises:
            FolioItemNotFound: the folio has no item ``name``.
        """
        self._get(name)
        del self._items[name]
        self._metadata._touch()
        return self

    def item_info(self, name: str) -> dict[str, Any]:
        """What the folio records of item ``name`` (a copy): type, format, hash, size, description, inputs,
        created_at, updated_at and the type's own fields (a table's num_rows, num_cols and dtypes, a model's
        hyperparameters, a reference's path and version, ``code``...).

        Raises:
            FolioItemNotFound: the folio has no item ``name`` (a KeyError).
        """
        info: dict[str, Any] = json.loads(json.dumps(self._get(name).to_manifest()))
        return info

    # ------------------------------------------------------------- lineage
    def get_inputs(self, name: str) -> list[str]:
        """What item ``name`` was made from: other items' names, paths, URLs, lake files as ``name@version``.

        Raises:
            FolioItemNotFound: the folio has no item ``name`` (a KeyError).
        """
        return self._get(name).input_names()

    def get_dependents(self, name: str) -> list[str]:
        """The items of this folio made from item ``name`` (those that list it among their inputs).

        Raises:
            FolioItemNotFound: the folio has no item ``name`` (a KeyError).
        """
        self._get(name)
        return [i.name for i in self._items.values() if name in i.input_names()]

    def get_lineage_graph(self) -> dict[str, list[str]]:
        """Every item's inputs: ``{item name: [input, ...]}`` in item order (inputs as :meth:`get_inputs` gives them)."""
        return {i.name: i.input_names() for i in self._items.values()}

    def copy(self, new_path: str | os.PathLike[str] | None = None, *, metadata_updates: Mapping[str, Any] | None = None,
             include_items: Iterable[str] | None = None, exclude_items: Iterable[str] | None = None,
             storage_options: Mapping[str, Any] | None = None) -> Folio:
        """A new folio with this one's metadata (plus ``metadata_updates``) and items (all, or some).

        Items keep their bytes, inputs and timestamps; a folio read back from
        storage stays as trusted as it was. With ``new_path`` the copy is also
        saved there (as :meth:`save`).

        Raises:
            FolioError: both ``include_items`` and ``exclude_items`` are given.
            FolioItemNotFound: a named item is not in this folio.
        """
        if include_items is not None and exclude_items is not None:
            raise FolioError("cannot specify both include_items and exclude_items; give one of them")
        for listed in (include_items, exclude_items):
            if isinstance(listed, str):
                raise FolioTypeError("include_items and exclude_items are lists of item names, not one str")
        names = list(self._items) if include_items is None else list(include_items)
        for item_name in names + list(exclude_items or []):
            self._get(item_name)
        names = [n for n in names if n not in set(exclude_items or [])]
        metadata = {k: v for k, v in self._metadata.items() if k not in ("created_at", "updated_at")}
        new = Folio({**metadata, **dict(metadata_updates or {})})
        new._trusted = self._trusted
        for item_name in names:
            item = self._items[item_name]
            twin = Item(item.name, item.type, item.format, item.hash, item.size, item.description, list(item.inputs),
                         json.loads(json.dumps(item.info)), trusted=item.trusted or self._trusted,
                         ref_file=item.ref_file, options=dict(item.options))
            if item.type != "reference":
                twin.local = new._path_for(item.name, item_extension(item.format, item.info.get("suffix")))
                place(self._local(item), twin.local, "copy", readonly=False)
            new._items[item.name] = twin
        if new_path is not None:
            new.save(new_path, storage_options=storage_options)
        return new

    # ------------------------------------------------------------- reading
    def _get(self, name: str, *types: str) -> Item:
        item = self._items.get(name)
        if item is None:
            known = ", ".join(self._items) or "none"
            raise FolioItemNotFound(f"item {name!r} not found: the folio has no item {name!r}; it has: {known}",
                                    name=name)
        if types and item.type not in types:
            raise FolioItemNotFound(f"item {name!r} is a {item.type}, not a {' or '.join(types)}; "
                                    f"use get_{item.type if item.type != 'reference' else 'table'}")
        return item

    def _local(self, item: Item) -> str:
        """A local path of an included item's bytes: extracted from the archive or fetched from the lake once."""
        if item.local and os.path.exists(item.local):
            return item.local
        if item.member and self._reader is not None:
            filename = f"{item.name}{os.path.splitext(check_member_name(item.member))[1]}"
            cached = cache_lookup(str(item.hash), filename)
            if cached is None:
                cached = reserve(str(item.hash), filename)  # extract() writes a temporary name, then renames
                self._reader.extract(item.to_manifest() | {"member": item.member, "offset": item.offset}, cached)
                seal(cached)
            dest = cached
        elif item.file_id and self._lake is not None:
            dest = self._lake_file(item.file_id).local_path()
        else:
            raise FolioError(f"item {item.name!r} has no bytes here (the folio was closed or its source is gone)")
        item.local = dest
        self.extracted.append(item.name)
        return dest

    def _path_for_user(self, item: Item) -> str:
        """A local path to hand out: a read-only file in the user's folio cache (see cache.py), which outlives
        this object. Never a lake's stored object itself (read-only bits would not stop root editing it), nor
        this folio's own working folder (deleted with the folio)."""
        path = self._local(item)
        filename = f"{item.name}{item_extension(item.format, item.info.get('suffix'))}"
        if item.hash is not None and path == cache_item_path(item.hash, filename):
            return path
        if item.hash is None:  # pragma: no cover - every included item is hashed when added or listed
            raise FolioError(f"item {item.name!r} has no hash")
        return cache_store(path, item.hash, filename)

    def get_table(self, name: str, storage_options: Mapping[str, Any] | None = None) -> Any:
        """An included table (as the library it was added from) or a referenced one (pandas)."""
        item = self._get(name, "table", "reference")
        if item.type == "table":
            path = self._local(item)
            library = item.info.get("library")
            if library == "polars" and importable("polars"):
                import polars as pl

                return pl.read_parquet(path)
            pq = require_extra("pyarrow.parquet", "pandas", purpose=f"table {name!r}")
            if library == "pyarrow":
                return pq.read_table(path)
            return require_extra("pandas", "pandas", purpose=f"table {name!r}").read_parquet(path)
        return self._read_reference(item, dict(storage_options or {}))

    def _lake_file(self, file_id: str) -> File:
        """A lake file of this (lake) folio, marked as read: lineage sees what the folio's user used."""
        assert self._lake is not None
        file = self._lake.resolve(file_id)
        self._lake.mark_read(file)
        return file

    def _referenced_file(self, item: Item) -> File | None:
        """The lake file a reference points at, when it is one and that lake is at hand."""
        if item.ref_file is not None:
            return item.ref_file
        lake_ref = item.info.get("lake")
        return self._lake_file(lake_ref["id"]) if lake_ref and self._lake is not None else None

    def _read_reference(self, item: Item, options: dict[str, Any]) -> Any:
        pd = require_extra("pandas", "pandas", purpose=f"table {item.name!r}")

        url = item.info["path"]
        file = self._referenced_file(item)
        if file is not None:
            url, options = file.local_path(), {}
        else:
            options = {**item.info.get("storage_options", {}), **item.options, **options}
        secrets = secret_values(options)
        remote = "://" in url and not url.startswith("file://")
        options = fs_options(url, options) if remote else options
        kwargs = {"storage_options": options} if remote and options else {}
        try:
            if item.format == "parquet":
                return pd.read_parquet(url, **kwargs)
            if item.format == "csv":
                return pd.read_csv(url, **kwargs)
            deltalake = _require("deltalake", "reading a delta table")
            version = item.info.get("version")
            return deltalake.DeltaTable(url, version=version if isinstance(version, int) else None,
                                        storage_options=options or None).to_pandas()
        except FileNotFoundError:
            raise FolioError(f"referenced table {item.name!r} is not at {redact_url(url)} any more") from None
        except OSError as exc:
            if not remote:
                raise
            # Credentials refused, endpoint unreachable: say where, never echo a secret back.
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            for secret in secrets:
                reason = reason.replace(secret, "***")
            raise RemoteError(f"cannot read referenced table {item.name!r} at {redact_url(url)}: {reason}; "
                              "check its storage_options (endpoint, credentials)") from None

    def get_model(self, name: str, trusted: bool = False) -> Any:
        """A model. From a folio loaded from storage, a joblib model needs ``trusted=True``: unpickling runs code."""
        item = self._get(name, "model")
        path = self._local(item)
        allowed = trusted or item.trusted or self._trusted
        if item.format == "skops":  # the trust list is in models.py
            return load_skops(path, name, self.source, allowed)
        return load_joblib(path, name, self.source, allowed)

    def get_array(self, name: str) -> Any:
        """An included numpy array (read without pickle)."""
        np = require_extra("numpy", "pandas", purpose=f"array {name!r}")

        return np.load(self._local(self._get(name, "array")), allow_pickle=False)

    def get_json(self, name: str) -> Any:
        """Included JSON data, parsed."""
        with open(self._local(self._get(name, "json")), encoding="utf-8") as f:
            return json.load(f)

    def get_artifact_path(self, name: str) -> str:
        """A local path of an artifact (extracted on first use)."""
        return self._path_for_user(self._get(name, "artifact"))

    def get_folio(self, name: str) -> Folio:
        """An included folio, opened lazily; it is trusted only when this folio is."""
        item = self._get(name, "folio")
        inner = Folio.load(self._local(item), lazy=True, trusted=self._trusted or item.trusted)
        inner.source = f"{self.source or 'folio'}#{name}"
        return inner

    def get_data_path(self, name: str) -> str:
        """Where a referenced table's data is: its URL or path (a lake file's local path).

        Raises:
            FolioItemIncluded: the item is included in the folio, not referenced (use :meth:`get_item_path`).
        """
        item = self._get(name)
        if item.type != "reference":
            raise FolioItemIncluded(f"item {name!r} is included in the folio (a {item.type}), not a reference to "
                                    f"data elsewhere; get_item_path({name!r}) gives a local copy of its bytes",
                                    name=name)
        file = self._referenced_file(item) if item.ref_file is None else None
        return file.local_path() if file is not None else str(item.info["path"])

    def get_item_path(self, name: str) -> str:
        """A local, read-only path of an included item's bytes, kept in the user's cache until pruned.

        Raises:
            FolioItemNotFound: no such item, or it is a reference (use :meth:`get_data_path`).
        """
        return self._path_for_user(self._get(name, "table", "model", "array", "json", "artifact", "folio"))

    @staticmethod
    def prune_cache(older_than: Any = 0) -> int:
        """Delete cached folio items (paths handed out by :meth:`get_artifact_path`...) unused for ``older_than``.

        ``older_than`` is a timedelta or seconds; returns how many files were removed.
        """
        return prune_cache(older_than)

    # ------------------------------------------------------------- listing
    def list_contents(self) -> pd.DataFrame:
        """One row per item: name, type, format, size, hash, description, category, num_rows, num_cols, path,
        inputs, created_at, updated_at."""
        pd = require_extra("pandas", "pandas", purpose="Folio.list_contents")

        rows = [{"name": i.name, "type": i.type, "format": i.format, "size": i.size, "hash": i.hash,
                 "description": i.description, "category": i.info.get("category"),
                 "num_rows": i.info.get("num_rows"), "num_cols": i.info.get("num_cols"), "path": i.info.get("path"),
                 "inputs": i.input_names(), "created_at": i.info.get("created_at"),
                 "updated_at": i.info.get("updated_at")}
                for i in self._items.values()]
        columns = ["name", "type", "format", "size", "hash", "description", "category", "num_rows", "num_cols", "path",
                   "inputs", "created_at", "updated_at"]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.astype({"size": "Int64", "num_rows": "Int64", "num_cols": "Int64"})

    def describe(self) -> str:
        """A readable summary: the metadata, then one line per item."""
        lines = [f"Folio{' ' + redact_url(self.source) if self.source else ''}: {len(self)} items"]
        if self._metadata:
            lines.append("metadata: " + json.dumps(self._metadata, ensure_ascii=False, default=str)[:400])
        width = max((len(n) for n in self._items), default=0)
        for item in self._items.values():
            detail = [item.format]
            if item.size is not None:
                detail.append(f"{item.size} B")
            if item.info.get("num_rows") is not None:
                detail.append(f"{item.info['num_rows']} rows")
            if item.info.get("category"):
                detail.append(f"category {item.info['category']}")
            if item.type == "reference":
                detail.append(f"-> {redact_url(item.info['path'])}")
            text = f"  {item.name:<{width}}  {item.type:<9} {', '.join(detail)}"
            lines.append(text + (f"  # {item.description}" if item.description else ""))
        return "\n".join(lines)

    # ------------------------------------------------------------- saving
    def _manifest(self) -> dict[str, Any]:
        metadata = plain(self._metadata)
        problem = json_problem(metadata)
        if problem:
            raise FolioError(f"folio metadata must be JSON: {problem}; convert it (datetimes with .isoformat())")
        return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "metadata": metadata,
                "items": [i.to_manifest() for i in self._items.values()]}

    def save(self, url: str | os.PathLike[str], compression: str | None = None,
             storage_options: Mapping[str, Any] | None = None) -> str:
        """Write the folio as an archive to a local path or any fsspec URL; returns ``url``.

        ``compression``: ``"gz"`` or ``"none"``; by default ``.tar`` means none
        and anything else (``.tar.gz``, ``.tgz``) gzip. An uncompressed ``.tar``
        can be read item by item with range requests; a ``.tar.gz`` only from its start.
        """
        url = os.fspath(url)
        if compression is None:
            compression = "none" if url.endswith(".tar") else "gz"
        if compression not in ("gz", "none"):
            raise FolioError(f"compression is 'gz' or 'none', not {compression!r}")
        manifest = self._manifest()
        members = []
        for entry, item in zip(manifest["items"], self._items.values(), strict=True):
            if item.type == "reference":
                continue
            ext = item_extension(item.format, item.info.get("suffix"))
            entry["member"] = check_member_name(f"items/{item.name}{ext}")
            members.append((entry["member"], self._local(item)))
        local_target = "://" not in url or url.startswith("file://")
        folder = os.path.dirname(os.path.abspath(url.removeprefix("file://"))) if local_target else None
        if folder:
            os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".folio-", suffix=".tmp", dir=folder)
        os.close(fd)
        try:
            write_archive(tmp, manifest, members, compress=compression == "gz")
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; a saved folio gets the usual mode
            put(tmp, url, dict(storage_options or {}))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return url

    @classmethod
    def load(cls, url: str | os.PathLike[str], lazy: bool = True, trusted: bool = False,
             storage_options: Mapping[str, Any] | None = None) -> Folio:
        """Open an archive written by :meth:`save`.

        ``lazy`` (the default) reads only the manifest; each item's bytes are
        read when first used. ``lazy=False`` reads the whole archive now, and
        refuses it if any member is unsafe. ``trusted=True`` allows loading its
        joblib models (unpickling runs code: only for folios you trust).
        """
        url = os.fspath(url)
        reader = ArchiveReader(url, dict(storage_options or {}))
        manifest = reader.read_manifest()
        folio = cls._from_manifest(manifest, url, trusted)
        folio._reader = reader
        if storage_options:
            for item in folio._items.values():
                if item.type == "reference":
                    item.options = dict(storage_options)
        if not lazy:
            reader.scan()  # every member checked, even ones the manifest does not name
            for item in folio._items.values():
                if item.member:
                    folio._local(item)
        return folio

    @classmethod
    def _from_manifest(cls, manifest: dict[str, Any], source: str, trusted: bool) -> Folio:
        folio = cls(manifest.get("metadata") or {})
        folio._trusted, folio.source = trusted, source
        base = ("name", "type", "format", "hash", "size", "description", "inputs", "member", "offset", "file")
        for entry in manifest["items"]:
            info = {k: v for k, v in entry.items() if k not in base}
            item = Item(entry["name"], entry["type"], entry.get("format", ""), entry.get("hash"), entry.get("size"),
                         entry.get("description"), list(entry.get("inputs") or []), info,
                         member=entry.get("member"), offset=entry.get("offset"), file_id=entry.get("file"))
            folio._items[item.name] = item
        return folio


# -------------------------------------------------- for limnos.folio.in_lake
# Saving into a lake and reading back from one live in in_lake.py; these three
# are all it needs of a Folio's insides.
def manifest_of(folio: Folio) -> dict[str, Any]:
    """The manifest ``folio`` is saved with: format, version, metadata and one JSON-ready entry per item, in order.

    Raises:
        FolioError: the folio's metadata is not JSON.
    """
    return folio._manifest()


def item_bytes_path(folio: Folio, name: str) -> str:
    """A local path of an included item's bytes (extracted or fetched on first use), only to be read."""
    return folio._local(folio._get(name))


def lake_folio(manifest: dict[str, Any], source: str, lake: LakeBase) -> Folio:
    """A folio from a manifest stored in ``lake``: its items' bytes are the lake files the entries name.

    The folio is untrusted (its models need ``trusted=True``), like any folio read back from storage.
    """
    folio = Folio._from_manifest(manifest, source, trusted=False)
    folio._lake = lake
    return folio


__all__ = ["MODEL_FORMATS", "TABLE_FORMATS", "Folio", "item_bytes_path", "item_extension", "lake_folio", "manifest_of"]
