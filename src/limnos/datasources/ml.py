"""torch datasets and dataloaders over a datasource query result.

``result.as_ml_dataset("torch", metadata_columns=["label"], strategy="background")``
gives a ``torch.utils.data.Dataset`` whose item ``i`` is a list: the
datapoint's file as a tensor, then one tensor per metadata column.

Strategies (when the bytes come to this machine):

* ``lazy``: each item fetches its file when it is asked for;
* ``background``: threads fetch every file ahead, in order; an item not yet
  fetched is fetched at once (or waited for, if a thread is on it);
* ``preload``: every file is fetched before the dataset is returned.

Files come through the lake's cache (verified by hash) or, for references,
straight from their folder or the reference cache; ``savedir=`` copies them
into a folder of your choice instead. Every strategy works with DataLoader
workers (``num_workers > 0``): a dataset pickles without its threads, and a
worker serves files already on disk and fetches the rest itself.

Tensorizers turn a column into a tensor: ``"image"`` (Pillow, uint8 C x H x W),
``"numeric"``, ``"text"`` (UTF-8 bytes as uint8), ``"raw"`` (bytes as
uint8), or any callable (it gets an open binary file for the file column, the
value for a metadata column). ``"auto"`` picks by extension and field type.
TensorFlow is not supported yet.
"""

from __future__ import annotations

import mimetypes
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import FieldNotFound, LimnosError, MetadataError, require_extra
from .fetch import safe_target

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from .results import QueryResult

    _Base = Dataset[list[Any]]
else:
    try:  # a real torch Dataset when torch is installed; as_dataset() asks for it otherwise
        from torch.utils.data import Dataset as _Base
    except ImportError:  # pragma: no cover - exercised only without torch
        _Base = object

STRATEGIES = ("lazy", "background", "preload")
_DATASET_OPTIONS = ("metadata_columns", "strategy", "tensorizers", "savedir", "jobs", "processes")


# ---------------------------------------------------------------- tensorizers
def _read(value: Any) -> bytes:
    if hasattr(value, "read"):
        data: bytes = value.read()
        return data
    if isinstance(value, str) and os.path.exists(value):
        with open(value, "rb") as f:
            return f.read()
    if isinstance(value, str):
        return value.encode()
    return bytes(value)


def image_tensor(value: Any) -> Any:
    """An image (open file, path or bytes) as a uint8 tensor of shape C x H x W."""
    import io

    import torch

    from ..errors import require_extra

    np = require_extra("numpy", "torch", purpose="the image tensorizer")

    try:
        from PIL import Image
    except ImportError:
        from ..errors import MissingExtra

        raise MissingExtra("the image tensorizer needs Pillow; run: pip install Pillow") from None

    source = value if hasattr(value, "read") or isinstance(value, str) else io.BytesIO(bytes(value))
    with Image.open(source) as image:
        if image.mode not in ("L", "RGB", "RGBA"):
            image = image.convert("RGB")
        array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def numeric_tensor(value: Any) -> Any:
    """A number, bool or datetime (as POSIX seconds) as a 0-d tensor."""
    import datetime as dt

    import torch

    if isinstance(value, dt.datetime):
        value = value.timestamp()
    if isinstance(value, (bytes, str)) or hasattr(value, "read"):
        value = float(_read(value).decode().strip())
    return torch.tensor(value)


def text_tensor(value: Any) -> Any:
    """Text (str, bytes or an open file) as its UTF-8 bytes in a uint8 tensor."""
    import torch

    data = value.encode() if isinstance(value, str) else _read(value)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


def raw_tensor(value: Any) -> Any:
    """Bytes (or an open file) as a uint8 tensor."""
    import torch

    data = _read(value)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


def identity(value: Any) -> Any:
    """The value unchanged (the ``"none"`` tensorizer)."""
    return value


TENSORIZERS: dict[str, Callable[[Any], Any]] = {"image": image_tensor, "numeric": numeric_tensor, "text": text_tensor,
                                                 "raw": raw_tensor, "bytes": raw_tensor, "none": identity}


def _auto_for_file(paths: Sequence[str]) -> Callable[[Any], Any]:
    kinds = {(mimetypes.guess_type(p)[0] or "").split("/")[0] for p in paths}
    if kinds == {"image"}:
        return image_tensor
    if kinds == {"text"}:
        return text_tensor
    return raw_tensor


def _auto_for_field(ftype: str | None) -> Callable[[Any], Any]:
    if ftype in ("int", "float", "bool", "datetime"):
        return numeric_tensor
    if ftype == "blob":
        return raw_tensor
    return identity  # str and JSON stay as they are; the default collate makes lists of them


def _pick(spec: Any, auto: Callable[[Any], Any]) -> Callable[[Any], Any]:
    if spec == "auto":
        return auto
    if callable(spec):
        chosen: Callable[[Any], Any] = spec
        return chosen
    if isinstance(spec, str) and spec in TENSORIZERS:
        return TENSORIZERS[spec]
    raise LimnosError(f"unknown tensorizer {spec!r}; use 'auto', {', '.join(map(repr, TENSORIZERS))} or a callable")


# --------------------------------------------------------------------- dataset
class DatapointDataset(_Base):
    """A torch Dataset over a query result: item i is [file tensor, *metadata column tensors]."""

    def __init__(self, result: QueryResult, metadata_columns: Sequence[str] = (), strategy: str = "lazy",
                 tensorizers: Any = "auto", savedir: str | os.PathLike[str] | None = None, jobs: int | None = None) -> None:
        """A dataset over ``result``'s datapoints, their files fetched by ``strategy`` (see the module's docs).

        Raises:
            LimnosError: the strategy or tensorizers are unknown.
            FieldNotFound: a metadata column is no field of the datasource.
            InvalidName: with ``savedir``, a datapoint's path would land outside it.
        """
        if strategy not in STRATEGIES:
            raise LimnosError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
        columns = [metadata_columns] if isinstance(metadata_columns, str) else list(metadata_columns)
        types = result._types
        for name in columns:
            if name not in types and name not in ("path", "size"):
                raise FieldNotFound(f"no field {name!r} in datasource {result.datasource.name!r}; "
                                    f"its fields are: {', '.join(sorted(types))}")
        self.metadata_columns = columns
        self.strategy = strategy
        self.savedir = os.path.realpath(os.fspath(savedir)) if savedir is not None else None
        self._types = {c: ("int" if c == "size" else "str" if c == "path" else types.get(c)) for c in columns}
        self._items = [(dp.path, dp.kind, dp.hash, dp.uri, dp.size, dp.fingerprint,
                        tuple(dp[c] if c in ("path", "size") else dp._blobs.get(c, dp.metadata.get(c)) for c in columns))
                       for dp in result.datapoints]
        self._fetcher = result._fetcher
        self._pid = os.getpid()
        self._local: dict[int, str] = {}
        self._futures: dict[int, Future[str]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.set_tensorizers(tensorizers)
        if self.savedir is not None:
            for item in self._items:
                safe_target(self.savedir, item[0])  # refuse an escaping path before anything is written
        from ..store.transfer import default_jobs

        self._jobs = max(1, jobs or min(16, default_jobs()))
        if strategy == "preload" and self._items:
            with ThreadPoolExecutor(min(self._jobs, len(self._items))) as pool:
                for i, path in enumerate(pool.map(self._fetch, range(len(self._items)))):
                    self._local[i] = path
        elif strategy == "background" and self._items:
            self._pool = ThreadPoolExecutor(min(self._jobs, len(self._items)), thread_name_prefix="limnos-ml")
            self._futures = {i: self._pool.submit(self._fetch, i) for i in range(len(self._items))}

    def set_tensorizers(self, tensorizers: Any) -> None:
        """``"auto"``, one name or callable for every column, or a list: file column first, then each metadata column."""
        count = 1 + len(self.metadata_columns)
        specs = list(tensorizers) if isinstance(tensorizers, (list, tuple)) else [tensorizers] * count
        if len(specs) != count:
            raise LimnosError(f"tensorizers has {len(specs)} entries; give {count}: the file, then "
                              f"{', '.join(self.metadata_columns) or 'no metadata columns'}")
        autos = [_auto_for_file([i[0] for i in self._items])] + [_auto_for_field(self._types[c]) for c in self.metadata_columns]
        self.tensorizers = [_pick(s, a) for s, a in zip(specs, autos, strict=True)]

    def __getstate__(self) -> dict[str, Any]:
        # Workers get the dataset without its threads: they serve what is on disk and fetch the rest.
        with self._lock:
            done = {i: f.result() for i, f in self._futures.items() if f.done() and not f.exception()}
        return dict(self.__dict__, _pool=None, _futures={}, _lock=None, _local={**self._local, **done})

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def _fetch(self, i: int) -> str:
        path, kind, digest, uri, size, fingerprint, _values = self._items[i]
        if self.savedir is None:
            return self._fetcher.datapoint_path(path, kind, digest, uri, size, fingerprint)
        dest = safe_target(self.savedir, path)
        if os.path.exists(dest) and os.path.getsize(dest) == size:
            return dest
        return self._fetcher.datapoint_path(path, kind, digest, uri, size, fingerprint, dest=dest)

    def local_path(self, i: int) -> str:
        """The local file of item ``i``, fetched now if no one has yet."""
        if i in self._local:
            return self._local[i]
        future = self._futures.get(i) if os.getpid() == self._pid else None
        # A future that already ran (or cannot be cancelled, as it runs) gives the path; else fetch it here.
        path = future.result() if future is not None and (future.done() or not future.cancel()) else self._fetch(i)
        self._local[i] = path
        return path

    def __getitem__(self, i: int) -> list[Any]:
        if not -len(self._items) <= i < len(self._items):
            raise IndexError(f"index {i} is out of range for {len(self._items)} datapoints")
        i %= len(self._items)
        path, _kind, _digest, _uri, _size, _fp, values = self._items[i]
        with open(self.local_path(i), "rb") as f:
            out = [self.tensorizers[0](f)]
        for column, value, tensorize in zip(self.metadata_columns, values, self.tensorizers[1:], strict=True):
            if value is None:
                raise MetadataError(f"datapoint {path!r} has no value for {column!r}; "
                                    f"filter first, as in ds[ds[{column!r}].is_not_null()]")
            if self._types[column] == "blob":
                with open(self._fetcher.object_path(value), "rb") as f:
                    value = f.read()
            out.append(tensorize(value))
        return out

    def close(self) -> None:
        """Stop fetching ahead (background strategy)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __repr__(self) -> str:
        return f"<DatapointDataset {len(self)} items, {self.strategy}, columns={['file', *self.metadata_columns]}>"


def _check_flavor(flavor: str) -> None:
    if flavor == "torch":
        require_extra("torch", "torch")
        return
    if flavor in ("tensorflow", "tf", "keras"):
        raise LimnosError("TensorFlow datasets are not supported yet; use flavor='torch'")
    raise LimnosError(f"unknown ML flavor {flavor!r}; use 'torch'")


def as_dataset(result: QueryResult, flavor: str = "torch", **kwargs: Any) -> DatapointDataset:
    """A :class:`DatapointDataset` over ``result``; ``kwargs`` are its options (metadata_columns, strategy...).

    Raises:
        LimnosError: an option or the flavor is unknown (only ``"torch"`` is supported).
        MissingExtra: torch is not installed.
    """
    unknown = set(kwargs) - set(_DATASET_OPTIONS)
    if unknown:
        raise LimnosError(f"unknown dataset options {', '.join(sorted(unknown))}; use {', '.join(_DATASET_OPTIONS)}")
    _check_flavor(flavor)
    if "processes" in kwargs:
        # DagsHub's name for the number of parallel downloads (they are threads here, as there).
        processes = kwargs.pop("processes")
        if kwargs.get("jobs") not in (None, processes):
            raise LimnosError(f"processes={processes!r} and jobs={kwargs['jobs']!r} disagree; pass one of them")
        kwargs["jobs"] = processes
    return DatapointDataset(result, **kwargs)


def as_dataloader(result: QueryResult, flavor_or_dataset: Any = "torch", **kwargs: Any) -> Any:
    """A ``torch.utils.data.DataLoader``; dataset options and DataLoader options may be mixed."""
    options = {k: kwargs.pop(k) for k in _DATASET_OPTIONS if k in kwargs}
    if isinstance(flavor_or_dataset, str):
        dataset = as_dataset(result, flavor_or_dataset, **options)
    else:
        _check_flavor("torch")
        dataset = flavor_or_dataset
        if "tensorizers" in options and isinstance(dataset, DatapointDataset):
            dataset.set_tensorizers(options.pop("tensorizers"))
        if options:
            raise LimnosError(f"{', '.join(sorted(options))} apply when the dataset is made; pass them to as_ml_dataset")
    from torch.utils.data import DataLoader

    return DataLoader(dataset, **kwargs)


__all__ = ["STRATEGIES", "TENSORIZERS", "DatapointDataset", "as_dataloader", "as_dataset", "image_tensor",
           "numeric_tensor", "raw_tensor", "text_tensor"]
