"""TensorFlow: a ``tf.data.Dataset`` over a datasource query result.

``result.as_ml_dataset("tensorflow", metadata_columns=["label"])`` gives a
``tf.data.Dataset`` whose elements are ``(file, label)`` tuples (the file
alone without metadata columns), so ``model.fit(dataset.batch(32))`` takes it
as ``(x, y)``. The strategies, ``savedir`` and ``jobs`` are those of the torch
dataset (:mod:`limnos.datasources.ml`): the same :class:`DatapointSource`
fetches the bytes, and the dataset can be iterated any number of times.

Tensorizers, in TensorFlow's layouts: ``"image"`` (uint8 ``H x W x C``, as
``tf.io.decode_image``), ``"audio"`` (float32 ``frames x channels``, as
``tf.audio.decode_wav``), ``"video"`` (uint8 ``T x H x W x 3``),
``"numeric"`` (a scalar: int64, float64 or bool; a datetime as POSIX
seconds), ``"text"``, ``"raw"`` and ``"none"`` (a ``tf.string`` scalar; JSON
values as their JSON text), or any callable returning what
``tf.convert_to_tensor`` takes. Dimensions are left unknown in the element
spec, since images and clips differ in size: resize in ``dataset.map`` (or use
``padded_batch``) before batching files of different shapes. A datapoint
without a value for a metadata column is refused when the dataset is made
(``MetadataError``), since TensorFlow would report it mid-epoch as its own error.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import LimnosError, MetadataError, require_extra
from .ml_base import (
    DatapointSource,
    auto_field_kind,
    auto_file_kind,
    decode_audio,
    decode_image,
    decode_video,
    read_bytes,
    tensorizer_specs,
    unknown_tensorizer,
)

if TYPE_CHECKING:
    from .results import QueryResult

FLAVORS = ("tensorflow", "tf", "keras")
#: the loader options ``as_ml_dataloader("tensorflow", ...)`` takes
LOADER_OPTIONS = ("batch_size", "shuffle", "drop_remainder", "seed")


def _numeric(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dt.datetime):
        value = value.timestamp()
    if isinstance(value, (bytes, str)) or hasattr(value, "read"):
        value = float(read_bytes(value).decode().strip())
    return np.asarray(value)


def _text(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else read_bytes(value)


def _plain(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


#: each tensorizer name's function, giving a value ``tf.convert_to_tensor`` takes
TENSORIZERS: dict[str, Callable[[Any], Any]] = {"image": decode_image, "audio": decode_audio, "video": decode_video,
                                                 "numeric": _numeric, "text": _text, "raw": read_bytes, "bytes": read_bytes,
                                                 "none": _plain}
# The element spec of an empty dataset, which has no item to look at: (dtype name, rank) per tensorizer.
_EMPTY_SPECS = {"image": ("uint8", 3), "audio": ("float32", 2), "video": ("uint8", 4), "numeric": ("float64", 0)}


def _pick(spec: Any, auto: str) -> tuple[Callable[[Any], Any], str | None]:
    if spec == "auto":
        return TENSORIZERS[auto], auto
    if callable(spec):
        return spec, None
    if isinstance(spec, str) and spec in TENSORIZERS:
        return TENSORIZERS[spec], spec
    raise unknown_tensorizer(spec)


class TFSource(DatapointSource):
    """A :class:`DatapointSource` with TensorFlow tensorizers; :meth:`dataset` makes the ``tf.data.Dataset``."""

    def __init__(self, result: QueryResult, metadata_columns: Sequence[str] = (), strategy: str = "lazy",
                 tensorizers: Any = "auto", savedir: str | os.PathLike[str] | None = None, jobs: int | None = None) -> None:
        """Check the tensorizers, then start fetching ``result``'s files by ``strategy``.

        Raises:
            LimnosError: the strategy or tensorizers are unknown.
            FieldNotFound: a metadata column is no field of the datasource.
            InvalidName: with ``savedir``, a datapoint's path would land outside it.
        """
        columns = [metadata_columns] if isinstance(metadata_columns, str) else list(metadata_columns)
        specs = tensorizer_specs(tensorizers, columns)
        for spec in specs:
            _pick(spec, "raw")  # a bad spec fails before any fetch starts
        # TensorFlow runs the generator in its own thread and turns a Python error into one of its own, so a
        # missing value is refused here, before anything is fetched, with an error that names it.
        for dp in result.datapoints:
            for column in columns:
                if column not in ("path", "size") and dp.metadata.get(column) is None:
                    raise MetadataError(f"datapoint {dp.path!r} has no value for {column!r}; "
                                        f"filter first, as in ds[ds[{column!r}].is_not_null()]")
        super().__init__(result, columns, strategy, savedir, jobs)
        autos = [auto_file_kind(self.paths)] + [auto_field_kind(self.column_types[c]) for c in columns]
        picked = [_pick(s, a) for s, a in zip(specs, autos, strict=True)]
        self.tensorizers = [fn for fn, _ in picked]
        self._kinds = [kind for _, kind in picked]

    def element(self, i: int) -> tuple[Any, ...]:
        """Item ``i``: the file, then each metadata column, as values ``tf.convert_to_tensor`` takes."""
        i = self.index(i)
        values = self.values(i)
        with open(self.local_path(i), "rb") as f:
            out = [self.tensorizers[0](f)]
        return (*out, *(t(v) for v, t in zip(values, self.tensorizers[1:], strict=True)))

    def _signature(self) -> tuple[Any, ...]:
        import tensorflow as tf

        if len(self):
            first = []
            for column, value in zip(["file", *self.metadata_columns], self.element(0), strict=True):
                try:
                    first.append(tf.convert_to_tensor(value))
                except (ValueError, TypeError) as exc:
                    raise LimnosError(f"the tensorizer of column {column!r} gave a {type(value).__name__}, which TensorFlow "
                                      f"cannot make a tensor of ({exc}); return an array, a number, str or bytes") from None
            return tuple(tf.TensorSpec(shape=[None] * t.shape.rank, dtype=t.dtype) for t in first)
        specs = []
        ftypes = [None, *(self.column_types[c] for c in self.metadata_columns)]
        for kind, ftype in zip(self._kinds, ftypes, strict=True):
            dtype, rank = _EMPTY_SPECS.get(kind or "", ("string", 0))
            if kind == "numeric" and ftype in ("int", "bool"):
                dtype = "int64" if ftype == "int" else "bool"
            specs.append(tf.TensorSpec(shape=[None] * rank, dtype=getattr(tf, dtype)))
        return tuple(specs)

    def dataset(self) -> Any:
        """The ``tf.data.Dataset``: ``(file, *columns)`` tuples, or the file alone without metadata columns."""
        import tensorflow as tf

        signature = self._signature()
        single = not self.metadata_columns

        def generate() -> Any:
            for i in range(len(self)):
                element = self.element(i)
                yield element[0] if single else element

        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature[0] if single else signature)
        # Its length is known: say so, for len(dataset), shuffle buffers and Keras' progress bars.
        return dataset.apply(tf.data.experimental.assert_cardinality(len(self)))


def check_tensorflow() -> None:
    """Fail with the install command when TensorFlow is missing.

    Raises:
        MissingExtra: TensorFlow is not installed.
    """
    require_extra("tensorflow", "tensorflow")


def tf_dataset(result: QueryResult, **options: Any) -> Any:
    """A ``tf.data.Dataset`` over ``result`` (see the module's docs); ``options`` are the dataset options.

    Raises:
        MissingExtra: TensorFlow is not installed.
        LimnosError: an option is unknown.
    """
    check_tensorflow()
    return TFSource(result, **options).dataset()


def tf_loader(dataset: Any, **loader_options: Any) -> Any:
    """``dataset`` batched (``batch_size``, ``drop_remainder``), optionally shuffled first, and prefetched.

    Raises:
        LimnosError: a loader option TensorFlow's pipeline does not take here.
    """
    import tensorflow as tf

    unknown = set(loader_options) - set(LOADER_OPTIONS)
    if unknown:
        raise LimnosError(f"unknown TensorFlow loader options {', '.join(sorted(unknown))}; use {', '.join(LOADER_OPTIONS)}, "
                          "or call methods of the tf.data.Dataset from as_ml_dataset")
    if loader_options.get("shuffle"):
        known = int(dataset.cardinality())
        dataset = dataset.shuffle(known if known > 0 else 1024, seed=loader_options.get("seed"))
    batch = loader_options.get("batch_size", 1)
    return dataset.batch(batch, drop_remainder=bool(loader_options.get("drop_remainder", False))).prefetch(tf.data.AUTOTUNE)


__all__ = ["FLAVORS", "LOADER_OPTIONS", "TENSORIZERS", "TFSource", "check_tensorflow", "tf_dataset", "tf_loader"]
