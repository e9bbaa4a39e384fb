"""What every ML export shares: fetching strategies, the items, and decoders that give numpy arrays.

:class:`DatapointSource` holds a query result's datapoints as plain tuples and
brings their bytes to this machine by a strategy (``lazy``, ``background``,
``preload``; see :mod:`limnos.datasources.ml`). The torch Dataset
(:mod:`~limnos.datasources.ml_torch`) and the ``tf.data`` export
(:mod:`~limnos.datasources.ml_tf`) are built on it, each with tensorizers in
its framework's own types; the decoders here are what they share:

* images with Pillow, as ``H x W x C`` uint8;
* audio with soundfile (libsndfile, bundled in its wheels: WAV, FLAC, OGG/Vorbis,
  MP3 with libsndfile >= 1.1), as ``frames x channels`` float32 in [-1, 1];
* video with PyAV (FFmpeg's libraries, bundled in its wheels), as
  ``T x H x W x 3`` uint8 RGB frames.

Each decoder imports its library when first called and raises
:class:`~limnos.errors.MissingExtra` with the install command without it.
"""

from __future__ import annotations

import io
import mimetypes
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import FieldNotFound, LimnosError, MetadataError, MissingExtra
from .fetch import safe_target

if TYPE_CHECKING:
    import numpy as np

    from .results import QueryResult

STRATEGIES = ("lazy", "background", "preload")
#: the options every flavor's dataset takes (``processes`` is DagsHub's name for ``jobs``)
DATASET_OPTIONS = ("metadata_columns", "strategy", "tensorizers", "savedir", "jobs", "processes")
#: the tensorizer names every flavor knows
TENSORIZER_NAMES = ("image", "audio", "video", "numeric", "text", "raw", "bytes", "none")

_AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".opus"})
_VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg"})


# ------------------------------------------------------------------ decoders
def read_bytes(value: Any) -> bytes:
    """The bytes of an open binary file, a path to one, text (UTF-8) or a bytes-like value."""
    if hasattr(value, "read"):
        data: bytes = value.read()
        return data
    if isinstance(value, str) and os.path.exists(value):
        with open(value, "rb") as f:
            return f.read()
    if isinstance(value, str):
        return value.encode()
    return bytes(value)


def _source(value: Any) -> Any:
    """Something a decoder library opens: an open file or a path as they are, bytes wrapped in a buffer."""
    return value if hasattr(value, "read") or isinstance(value, str) else io.BytesIO(bytes(value))


def decode_image(value: Any) -> np.ndarray:
    """An image (open file, path or bytes) as a uint8 array of shape H x W x C (C is 1, 3 or 4)."""
    import numpy as np

    try:
        from PIL import Image
    except ImportError:
        raise MissingExtra("the image tensorizer needs Pillow; run: pip install Pillow", module="PIL") from None
    with Image.open(_source(value)) as image:
        if image.mode not in ("L", "RGB", "RGBA"):
            image = image.convert("RGB")
        array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    copied: np.ndarray = array.copy()
    return copied


def decode_audio(value: Any) -> np.ndarray:
    """Audio (open file, path or bytes) as a float32 array of shape frames x channels, samples in [-1, 1].

    The sample rate is not part of the array: keep it as a field of the datasource.
    """
    try:
        import soundfile
    except ImportError:
        raise MissingExtra("the audio tensorizer needs soundfile; run: pip install 'limnos[audio]'",
                           module="soundfile", extra="audio") from None
    data: np.ndarray
    data, _rate = soundfile.read(_source(value), dtype="float32", always_2d=True)
    return data


def decode_video(value: Any) -> np.ndarray:
    """A video (open file, path or bytes) as a uint8 array of shape T x H x W x 3: every frame of its first video stream, RGB."""
    import numpy as np

    try:
        import av
    except ImportError:
        raise MissingExtra("the video tensorizer needs PyAV; run: pip install 'limnos[video]'",
                           module="av", extra="video") from None
    with av.open(_source(value)) as container:
        if not container.streams.video:
            raise LimnosError("the file has no video stream; use the 'raw' or 'audio' tensorizer for it")
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    if not frames:
        return np.zeros((0, 0, 0, 3), dtype=np.uint8)
    return np.stack(frames)


def auto_file_kind(paths: Sequence[str]) -> str:
    """The tensorizer ``"auto"`` picks for the file column: image, audio, video or text when every path is one, else raw."""
    kinds = set()
    for path in paths:
        ext = os.path.splitext(path)[1].lower()
        mime = (mimetypes.guess_type(path)[0] or "").split("/")[0]
        kinds.add("audio" if ext in _AUDIO_EXTENSIONS else "video" if ext in _VIDEO_EXTENSIONS else mime)
    if len(kinds) == 1 and next(iter(kinds)) in ("image", "audio", "video", "text"):
        return next(iter(kinds))
    return "raw"


def auto_field_kind(ftype: str | None) -> str:
    """The tensorizer ``"auto"`` picks for a metadata column of type ``ftype``."""
    if ftype in ("int", "float", "bool", "datetime"):
        return "numeric"
    if ftype == "blob":
        return "raw"
    return "none"  # str and JSON stay as they are


# -------------------------------------------------------------------- source
class DatapointSource:
    """A query result's datapoints and their bytes, fetched by a strategy; what every flavor's dataset is made of.

    Item ``i`` is the local path of datapoint ``i``'s file and its metadata
    column values (:meth:`values`). A blob column's value is read into bytes.
    """

    def __init__(self, result: QueryResult, metadata_columns: Sequence[str] = (), strategy: str = "lazy",
                 savedir: str | os.PathLike[str] | None = None, jobs: int | None = None) -> None:
        """The datapoints of ``result``, their files fetched by ``strategy`` (see :mod:`limnos.datasources.ml`).

        Raises:
            LimnosError: the strategy is unknown.
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
        #: each metadata column's field type (``int``, ``str``, ``blob``...)
        self.column_types = {c: ("int" if c == "size" else "str" if c == "path" else types.get(c)) for c in columns}
        self._items = [(dp.path, dp.kind, dp.hash, dp.uri, dp.size, dp.fingerprint,
                        tuple(dp[c] if c in ("path", "size") else dp._blobs.get(c, dp.metadata.get(c)) for c in columns))
                       for dp in result.datapoints]
        self._fetcher = result._fetcher
        self._pid = os.getpid()
        self._local: dict[int, str] = {}
        self._futures: dict[int, Future[str]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
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

    @property
    def paths(self) -> list[str]:
        """Each datapoint's path in its datasource, in order."""
        return [item[0] for item in self._items]

    def __getstate__(self) -> dict[str, Any]:
        # Workers get the source without its threads: they serve what is on disk and fetch the rest.
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

    def index(self, i: int) -> int:
        """``i`` as an index from 0 (negative counts from the end).

        Raises:
            IndexError: ``i`` is out of range.
        """
        if not -len(self._items) <= i < len(self._items):
            raise IndexError(f"index {i} is out of range for {len(self._items)} datapoints")
        return i % len(self._items)

    def values(self, i: int) -> list[Any]:
        """Item ``i``'s metadata column values, blobs read into bytes.

        Raises:
            MetadataError: the datapoint has no value for a column.
        """
        path, _kind, _digest, _uri, _size, _fp, values = self._items[i]
        out = []
        for column, value in zip(self.metadata_columns, values, strict=True):
            if value is None:
                raise MetadataError(f"datapoint {path!r} has no value for {column!r}; "
                                    f"filter first, as in ds[ds[{column!r}].is_not_null()]")
            if self.column_types[column] == "blob":
                with open(self._fetcher.object_path(value), "rb") as f:
                    value = f.read()
            out.append(value)
        return out

    def close(self) -> None:
        """Stop fetching ahead (background strategy)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def check_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The dataset options in ``kwargs``, checked; DagsHub's ``processes`` becomes ``jobs``.

    Raises:
        LimnosError: an unknown option, or ``processes`` and ``jobs`` that disagree.
    """
    unknown = set(kwargs) - set(DATASET_OPTIONS)
    if unknown:
        raise LimnosError(f"unknown dataset options {', '.join(sorted(unknown))}; use {', '.join(DATASET_OPTIONS)}")
    options = dict(kwargs)
    if "processes" in options:
        # DagsHub's name for the number of parallel downloads (they are threads here, as there).
        processes = options.pop("processes")
        if options.get("jobs") not in (None, processes):
            raise LimnosError(f"processes={processes!r} and jobs={options['jobs']!r} disagree; pass one of them")
        options["jobs"] = processes
    return options


def tensorizer_specs(tensorizers: Any, columns: Sequence[str]) -> list[Any]:
    """``tensorizers`` as one spec per column (the file first, then each metadata column).

    Raises:
        LimnosError: a list of the wrong length.
    """
    count = 1 + len(columns)
    specs = list(tensorizers) if isinstance(tensorizers, (list, tuple)) else [tensorizers] * count
    if len(specs) != count:
        raise LimnosError(f"tensorizers has {len(specs)} entries; give {count}: the file, then "
                          f"{', '.join(columns) or 'no metadata columns'}")
    return specs


def unknown_tensorizer(spec: Any) -> LimnosError:
    """The error for a tensorizer that is neither a name every flavor knows nor a callable."""
    return LimnosError(f"unknown tensorizer {spec!r}; use 'auto', {', '.join(map(repr, TENSORIZER_NAMES))} or a callable")


__all__ = ["DATASET_OPTIONS", "STRATEGIES", "TENSORIZER_NAMES", "DatapointSource", "auto_field_kind", "auto_file_kind",
           "check_options", "decode_audio", "decode_image", "decode_video", "read_bytes", "tensorizer_specs",
           "unknown_tensorizer"]
