"""Hugging Face: a ``datasets.Dataset`` over a datasource query result.

``result.as_hf_dataset()`` fetches every datapoint's file (through the lake's
cache, verified by hash, or the reference's folder) and returns an in-memory
Arrow-backed ``datasets.Dataset`` with one row per datapoint:

* ``path``: the datapoint's path in its datasource;
* ``image`` (a ``datasets.Image`` feature, decoded to a PIL image when read)
  when every datapoint is an image, else ``file``: the local path of the bytes;
* one column per metadata field (all of them, or ``metadata_columns``), typed
  from the field's type: int64, float64, bool, string, a UTC timestamp, JSON as
  its text, a blob as binary. A datapoint without a value has None there.

By default the image column refers to the files where they are (the lake's
read-only cache), so nothing is copied; ``embed=True`` puts the bytes in the
dataset instead, for ``save_to_disk`` or ``push_to_hub`` to another machine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import FieldNotFound, require_extra
from .ml_base import DatapointSource, auto_file_kind

if TYPE_CHECKING:
    from .results import QueryResult

_VALUE_TYPES = {"int": "int64", "float": "float64", "bool": "bool", "str": "string", "json": "string",
                "datetime": "timestamp[us, tz=UTC]", "blob": "binary"}


def hf_dataset(result: QueryResult, metadata_columns: Sequence[str] | None = None, savedir: str | os.PathLike[str] | None = None,
               jobs: int | None = None, embed: bool = False) -> Any:
    """A ``datasets.Dataset`` over ``result`` (see the module's docs).

    Args:
        result: the datapoints.
        metadata_columns: the fields to include (None: every field of the result).
        savedir: copy the files into this folder first, and refer to them there.
        jobs: parallel fetches.
        embed: put the files' bytes in the dataset rather than their local paths.

    Raises:
        MissingExtra: the ``datasets`` package is not installed.
        FieldNotFound: a metadata column is no field of the datasource.
        InvalidName: with ``savedir``, a datapoint's path would land outside it.
    """
    require_extra("datasets", "hf")
    import datasets

    if metadata_columns is None:
        columns = [c for c in result.field_names() if c not in ("path", "size")]
    else:
        columns = [metadata_columns] if isinstance(metadata_columns, str) else list(metadata_columns)
    types = result._types
    for name in columns:
        if name not in types and name != "size":
            raise FieldNotFound(f"no field {name!r} in datasource {result.datasource.name!r}; "
                                f"its fields are: {', '.join(sorted(types))}")
    source = DatapointSource(result, (), "preload", savedir, jobs)
    paths = [source.local_path(i) for i in range(len(source))]
    is_image = bool(paths) and auto_file_kind(source.paths) == "image"
    file_column = "image" if is_image else "file"
    if embed:
        files: list[Any] = [_read(p) for p in paths]
    else:
        files = list(paths)
    if is_image:
        files = [{"bytes": f, "path": dp.path} if embed else {"bytes": None, "path": f}
                 for f, dp in zip(files, result.datapoints, strict=True)]
    data: dict[str, list[Any]] = {"path": source.paths, file_column: files}
    features: dict[str, Any] = {"path": datasets.Value("string"),
                                file_column: datasets.Image() if is_image else
                                datasets.Value("binary" if embed else "string")}
    for name in columns:
        kind = "int" if name == "size" else types.get(name) or "str"
        data[name] = [_value(result, dp, name, kind) for dp in result.datapoints]
        features[name] = datasets.Value(_VALUE_TYPES.get(kind, "string"))
    return datasets.Dataset.from_dict(data, features=datasets.Features(features))


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _value(result: QueryResult, dp: Any, name: str, kind: str) -> Any:
    """A datapoint's value of field ``name``, as the column of type ``kind`` holds it."""
    if name == "size":
        return dp.size
    value = dp.metadata.get(name)
    if value is None:
        return None
    if kind == "json":
        return json.dumps(value, sort_keys=True)
    if kind == "blob":
        digest = dp._blobs.get(name, value)
        return value if isinstance(value, bytes) else _read(result._fetcher.object_path(digest))
    return value


__all__ = ["hf_dataset"]
